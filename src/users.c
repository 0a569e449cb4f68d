/*
 * The user store: accounts in an array sorted by name (binary search),
 * the settings MGMT may change, and the users file's format: read and
 * parsed at load, written whole by savefile_replace() at each save.  No
 * socket calls here, and a password is never logged or kept in clear.
 */
#include <sys/types.h>

#include <assert.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "now.h"
#include "proto.h"
#include "regfile.h"
#include "savefile.h"
#include "settings.h"
#include "siphash.h"
#include "users.h"
#include "wipe.h"

/* crypt(3) SHA-512 takes up to 16 salt characters; we use them all. */
#define SALT_LEN		16

/*
 * Room for one crypt(3) result.  "$6$" + 16 salt + '$' + 86 hash is 106;
 * a hand-written "rounds=N$" prefix adds a few more.
 */
#define HASH_MAX		256

/* First read of the users file; doubled as needed. */
#define READ_CHUNK		4096

/* crypt(3) SHA-512: 512 bits as 86 characters of salt_chars. */
#define HASH_B64_LEN		86

/*
 * A $6$ hash of a random password nobody knows.  users_verify() runs
 * crypt(3) against it for unknown users, so an unknown name costs the
 * same work as a known one; its result is never accepted.
 */
static const char dummy_hash[] =
    "$6$NlHSk2UG0GZkBPtB$ZA2oxpwgtO3j9fHJvNQGVxe4vR1WWWZ6/WaqOClORkSeB6d"
    "wgwOq/3KsT/6MXmsi2q.wygL6o03wMSPeg.8Jx0";

/* 64 characters: a random byte & 63 picks one with no bias. */
static const char salt_chars[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
_Static_assert(sizeof(salt_chars) - 1 == 64, "salt alphabet must be 64");

static const char pass_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
#define PASS_NCHARS		(sizeof(pass_chars) - 1)
/* Random bytes at or above this would favour the first characters. */
#define PASS_REJECT		(256 - 256 % PASS_NCHARS)
_Static_assert(PASS_NCHARS == 62, "password alphabet must be 62");

static const char file_header[] =
    "# Maintained by pop3server: accounts (name:crypt-hash) and settings\n"
    "# (key=value).  Rewritten on every change; edit only while stopped.\n";

struct account {
	char	*name;		/* one allocation: "name\0hash\0" */
	char	*hash;		/* points into name's allocation */
	/*
	 * Login cache (Dovecot's auth cache idea): a keyed MAC of the
	 * last password that passed crypt(3), valid until cache_until
	 * (monotonic ms: setting the clock neither stretches nor cuts it).
	 * Any change of the hash makes a new account record: no stale hit.
	 */
	uint64_t cache_mac;
	uint64_t cache_until;
};

struct setting {
	char		*key;
	unsigned long	 value;
	char		*text;		/* "%key text" setting, or NULL */
};

struct users {
	char		*path;
	struct account	*acc;		/* sorted by strcmp() of name */
	size_t		 nacc, acc_cap;
	struct setting	*set;		/* file order, written back so */
	size_t		 nset, set_cap;
	uint64_t	 cache_key[2];	/* SipHash key of the login cache */
};

/* A growing byte string for users_save(). */
struct sbuf {
	char	*data;
	size_t	 len, cap;
	bool	 failed;
};

/*
 * Equality whose time depends only on the length of `known` (the stored
 * hash), not on where the first difference is.
 */
static bool
ct_streq(const char *guess, const char *known)
{
	size_t lg = strlen(guess), lk = strlen(known), i;
	unsigned char d = lg != lk;

	for (i = 0; i < lk; i++)
		d |= (unsigned char)((i < lg ? guess[i] : 0) ^ known[i]);
	return d == 0;
}

/* Fills buf from /dev/urandom; -1 with errno on failure. */
static int
random_bytes(unsigned char *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;
	int fd, saved;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	while (got < n) {
		r = read(fd, buf + got, n - got);
		if (r > 0) {
			got += (size_t)r;
		} else if (r == -1 && errno == EINTR) {
			continue;
		} else {
			saved = r == 0 ? EIO : errno;
			(void)close(fd);
			errno = saved;
			return -1;
		}
	}
	(void)close(fd);
	return 0;
}

/*
 * Returns arr, grown so that index n fits, or NULL (arr untouched) when
 * memory runs out.  *cap counts elements.
 */
static void *
grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return arr;
	ncap = *cap == 0 ? 16 : *cap;
	if (ncap > SIZE_MAX / 2 / elem)
		return NULL;
	ncap *= 2;
	p = realloc(arr, ncap * elem);
	if (p == NULL)
		return NULL;
	*cap = ncap;
	return p;
}

static bool
valid_key(const char *key, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_'))
			return false;
	return true;
}

/*
 * A saved setting must be one MGMT could have set: a hand-edited
 * idle_timeout=0 would log every POP3 session out at once.  The
 * descriptor ceiling caps max_connections at start, as it caps -m.
 */
static const struct {
	const char	*key;
	unsigned long	 min, max;
} setting_ranges[] = {
	{ SETTING_IDLE, SETTING_IDLE_MIN, SETTING_IDLE_MAX },
	{ SETTING_MAX_USERS, 1, SETTING_MAX_USERS_MAX },
	{ SETTING_MAX_CONN, 1, ULONG_MAX },
};

static bool
setting_in_range(const char *key, unsigned long v)
{
	size_t i;

	for (i = 0; i < sizeof(setting_ranges) / sizeof(setting_ranges[0]);
	    i++)
		if (strcmp(key, setting_ranges[i].key) == 0)
			return v >= setting_ranges[i].min &&
			    v <= setting_ranges[i].max;
	return true;	/* a key we do not use is kept as it is */
}

/*
 * The shape of what crypt(3) makes of "$6$" settings: "$6$", maybe
 * "rounds=N$", a salt of 1 to 16 characters, '$', the 86-character
 * hash.  A truncated hash would lock its user out for good, admin too
 * (a new admin is made only when none exists).
 */
static bool
valid_hash(const char *h)
{
	size_t n;

	if (strncmp(h, "$6$", 3) != 0)
		return false;
	h += 3;
	if (strncmp(h, "rounds=", 7) == 0) {
		n = strspn(h + 7, "0123456789");
		if (n == 0 || h[7 + n] != '$')
			return false;
		h += 7 + n + 1;
	}
	n = strspn(h, salt_chars);
	if (n == 0 || n > SALT_LEN || h[n] != '$')
		return false;
	h += n + 1;
	return strspn(h, salt_chars) == HASH_B64_LEN &&
	    h[HASH_B64_LEN] == '\0';
}

/*
 * Index of `name` in the sorted accounts (*found true), or the index
 * where it would be inserted (*found false).
 */
static size_t
acc_find(const struct users *u, const char *name, bool *found)
{
	size_t lo = 0, hi = u->nacc, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(name, u->acc[mid].name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

/* Fills a with a fresh "name\0hash\0" allocation. */
static enum users_status
acc_make(struct account *a, const char *name, const char *hash)
{
	size_t ln = strlen(name), lh = strlen(hash);

	a->name = malloc(ln + lh + 2);
	if (a->name == NULL)
		return USERS_NOMEM;
	memcpy(a->name, name, ln + 1);
	a->hash = a->name + ln + 1;
	memcpy(a->hash, hash, lh + 1);
	a->cache_mac = 0;
	a->cache_until = 0;
	return USERS_OK;
}

static enum users_status
acc_insert(struct users *u, size_t pos, const char *name, const char *hash)
{
	struct account a, *p;

	p = grow(u->acc, &u->acc_cap, u->nacc, sizeof(*u->acc));
	if (p == NULL)
		return USERS_NOMEM;
	u->acc = p;
	if (acc_make(&a, name, hash) != USERS_OK)
		return USERS_NOMEM;
	/* Loading a file we wrote appends at the end: no move then. */
	memmove(&u->acc[pos + 1], &u->acc[pos],
	    (u->nacc - pos) * sizeof(*u->acc));
	u->acc[pos] = a;
	u->nacc++;
	return USERS_OK;
}

static struct setting *
set_find(const struct users *u, const char *key)
{
	size_t i;

	for (i = 0; i < u->nset; i++)
		if (strcmp(u->set[i].key, key) == 0)
			return &u->set[i];
	return NULL;
}

static enum users_status
set_append(struct users *u, const char *key, unsigned long value)
{
	struct setting *p;
	char *k;

	p = grow(u->set, &u->set_cap, u->nset, sizeof(*u->set));
	if (p == NULL)
		return USERS_NOMEM;
	u->set = p;
	k = strdup(key);
	if (k == NULL)
		return USERS_NOMEM;
	u->set[u->nset].key = k;
	u->set[u->nset].value = value;
	u->set[u->nset].text = NULL;
	u->nset++;
	return USERS_OK;
}

/*
 * Hashes password with a fresh salt into out (HASH_MAX bytes).  Fails
 * with USERS_IO when no randomness is available or crypt(3) refuses.
 */
static enum users_status
hash_password(const char *password, char *out)
{
	unsigned char rnd[SALT_LEN];
	char setting[3 + SALT_LEN + 2];
	char *h;
	size_t i, n;

	if (random_bytes(rnd, sizeof(rnd)) == -1)
		return USERS_IO;
	memcpy(setting, "$6$", 3);
	for (i = 0; i < SALT_LEN; i++)
		setting[3 + i] = salt_chars[rnd[i] & 63];
	setting[3 + SALT_LEN] = '$';
	setting[4 + SALT_LEN] = '\0';

	errno = 0;
	h = crypt(password, setting);
	/* libxcrypt signals failure with a "*0"/"*1" token, glibc with NULL. */
	if (h == NULL || h[0] != '$')
		return errno == ENOMEM ? USERS_NOMEM : USERS_IO;
	n = strlen(h);
	if (n >= HASH_MAX)
		return USERS_IO;
	memcpy(out, h, n + 1);
	wipe(h, n);
	return USERS_OK;
}

/*
 * One line, NUL-terminated, without its line ending.  USERS_PARSE means
 * this line is at fault.
 */
static enum users_status
parse_line(struct users *u, char *s, size_t n)
{
	char *colon, *eq, *h;
	uint64_t v;
	size_t i, pos;
	bool found;

	if (strlen(s) != n)
		return USERS_PARSE;	/* a NUL inside the line */
	for (i = 0; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
		continue;
	if (i == n || s[0] == '#')
		return USERS_OK;

	/* A text setting: "%key text"; the text may hold ':' and '='. */
	if (s[0] == '%') {
		char *sp = strchr(s, ' ');

		if (sp == NULL || !valid_key(s + 1, (size_t)(sp - s - 1)))
			return USERS_PARSE;
		*sp = '\0';
		if (set_find(u, s + 1) != NULL)
			return USERS_PARSE;
		return users_set_setting_text(u, s + 1, sp + 1);
	}

	/*
	 * Names and keys contain neither ':' nor '=', but a hash may hold
	 * '=' ("$6$rounds=N$..."): whichever comes first decides.
	 */
	colon = strchr(s, ':');
	eq = strchr(s, '=');
	if (colon != NULL && (eq == NULL || colon < eq)) {
		*colon = '\0';
		h = colon + 1;
		if (!users_valid_name(s) || !valid_hash(h))
			return USERS_PARSE;
		pos = acc_find(u, s, &found);
		if (found)
			return USERS_PARSE;
		return acc_insert(u, pos, s, h);
	}
	if (eq != NULL) {
		*eq = '\0';
		if (!valid_key(s, (size_t)(eq - s)) ||
		    !proto_parse_uint(eq + 1, ULONG_MAX, &v) ||
		    !setting_in_range(s, (unsigned long)v))
			return USERS_PARSE;
		/* Two values for one key: which one was meant is unknown. */
		if (set_find(u, s) != NULL)
			return USERS_PARSE;
		return set_append(u, s, (unsigned long)v);
	}
	return USERS_PARSE;
}

/* Passes st on, with line n as the culprit when it is USERS_PARSE. */
static enum users_status
bad_line(enum users_status st, unsigned n, unsigned *line)
{
	if (st == USERS_PARSE && line != NULL)
		*line = n;
	return st;
}

static enum users_status
parse(struct users *u, char *data, size_t len, unsigned *line)
{
	char *p = data, *end = data + len, *nl, *e, *next;
	enum users_status st;
	unsigned n = 0, max_line = 0;

	while (p < end) {
		n++;
		nl = memchr(p, '\n', (size_t)(end - p));
		e = nl != NULL ? nl : end;
		next = nl != NULL ? nl + 1 : end;
		if (e > p && e[-1] == '\r')
			e--;
		*e = '\0';	/* read_file() left a spare byte at end */
		st = parse_line(u, p, (size_t)(e - p));
		if (st != USERS_OK)
			return bad_line(st, n, line);
		if (max_line == 0 && set_find(u, SETTING_MAX_USERS) != NULL)
			max_line = n;
		p = next;
	}
	/* As MGMT refuses MAX_USERS below the users that exist. */
	if (max_line != 0 && u->nacc > users_max(u))
		return bad_line(USERS_PARSE, max_line, line);
	return USERS_OK;
}

/*
 * Reads the whole file into *data (one spare byte after *len).  A
 * missing file gives *data NULL and USERS_OK.
 */
static enum users_status
read_file(const char *path, char **data, size_t *len)
{
	enum users_status st = USERS_IO;
	size_t cap = READ_CHUNK, n = 0;
	ssize_t r;
	char *buf = NULL, *p;
	int fd, saved;

	*data = NULL;
	*len = 0;
	/* -U naming a FIFO without writer would block us in read(). */
	fd = regfile_open(path, O_RDONLY, 0);
	if (fd == -1)
		return errno == ENOENT ? USERS_OK : USERS_IO;
	buf = malloc(cap);
	if (buf == NULL) {
		st = USERS_NOMEM;
		goto cleanup;
	}
	for (;;) {
		if (cap - n < 2) {
			if (cap > SIZE_MAX / 2) {
				errno = EFBIG;
				goto cleanup;
			}
			p = realloc(buf, cap * 2);
			if (p == NULL) {
				st = USERS_NOMEM;
				goto cleanup;
			}
			buf = p;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto cleanup;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*data = buf;
	*len = n;
	buf = NULL;
	st = USERS_OK;
cleanup:
	saved = errno;
	free(buf);
	(void)close(fd);
	errno = saved;
	return st;
}

enum users_status
users_load(const char *path, struct users **out, unsigned *line)
{
	enum users_status st;
	struct users *u;
	char *data = NULL;
	size_t len = 0;
	int saved;

	assert(path != NULL && out != NULL);
	*out = NULL;
	if (line != NULL)
		*line = 0;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return USERS_NOMEM;
	u->path = strdup(path);
	if (u->path == NULL) {
		st = USERS_NOMEM;
		goto cleanup;
	}
	if (random_bytes((unsigned char *)u->cache_key,
	    sizeof(u->cache_key)) == -1) {
		st = USERS_IO;
		goto cleanup;
	}
	st = read_file(path, &data, &len);
	if (st == USERS_OK && data != NULL)
		st = parse(u, data, len, line);
	if (st == USERS_OK)
		savefile_remove_stale(path);
cleanup:
	saved = errno;
	free(data);
	if (st != USERS_OK) {
		users_free(u);
		errno = saved;
		return st;
	}
	*out = u;
	return USERS_OK;
}

/* Gives u fresh's records (accounts, settings); u's path and cache key stay. */
static void
adopt(struct users *u, struct users *fresh)
{
	struct account *acc;
	struct setting *set;
	size_t n, cap;

	acc = u->acc, u->acc = fresh->acc, fresh->acc = acc;
	n = u->nacc, u->nacc = fresh->nacc, fresh->nacc = n;
	cap = u->acc_cap, u->acc_cap = fresh->acc_cap, fresh->acc_cap = cap;
	set = u->set, u->set = fresh->set, fresh->set = set;
	n = u->nset, u->nset = fresh->nset, fresh->nset = n;
	cap = u->set_cap, u->set_cap = fresh->set_cap, fresh->set_cap = cap;
	users_free(fresh);
}

enum users_status
users_reload(struct users *u)
{
	struct users *fresh;
	enum users_status st = users_load(u->path, &fresh, NULL);

	if (st == USERS_OK)
		adopt(u, fresh);
	return st;
}

void
users_free(struct users *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->nacc; i++)
		free(u->acc[i].name);
	for (i = 0; i < u->nset; i++) {
		free(u->set[i].key);
		free(u->set[i].text);
	}
	free(u->acc);
	free(u->set);
	free(u->path);
	free(u);
}

static void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	size_t ncap;
	char *p;

	if (n == 0)
		return;

	if (b->failed)
		return;
	if (b->cap - b->len < n) {
		ncap = b->cap == 0 ? READ_CHUNK : b->cap;
		while (ncap - b->len < n) {
			if (ncap > SIZE_MAX / 2) {
				b->failed = true;
				return;
			}
			ncap *= 2;
		}
		p = realloc(b->data, ncap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
}

static void
sbuf_str(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

static bool
serialize(const struct users *u, struct sbuf *b)
{
	char num[3 * sizeof(unsigned long) + 2];
	size_t i;

	sbuf_str(b, file_header);
	for (i = 0; i < u->nset; i++) {
		if (u->set[i].text != NULL) {
			sbuf_str(b, "%");
			sbuf_str(b, u->set[i].key);
			sbuf_str(b, " ");
			sbuf_str(b, u->set[i].text);
			sbuf_str(b, "\n");
			continue;
		}
		(void)snprintf(num, sizeof(num), "%lu", u->set[i].value);
		sbuf_str(b, u->set[i].key);
		sbuf_str(b, "=");
		sbuf_str(b, num);
		sbuf_str(b, "\n");
	}
	for (i = 0; i < u->nacc; i++) {
		sbuf_str(b, u->acc[i].name);
		sbuf_str(b, ":");
		sbuf_str(b, u->acc[i].hash);
		sbuf_str(b, "\n");
	}
	return !b->failed;
}


char *
users_snapshot(const struct users *u)
{
	struct sbuf b = { 0 };

	if (!serialize(u, &b) || (sbuf_add(&b, "", 1), b.failed)) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

enum users_status
users_restore(struct users *u, const char *snapshot)
{
	struct users *fresh = calloc(1, sizeof(*fresh));
	size_t len = strlen(snapshot);
	char *text = malloc(len + 1);
	enum users_status st = USERS_NOMEM;

	if (fresh != NULL && text != NULL) {
		memcpy(text, snapshot, len + 1);
		st = parse(fresh, text, len, NULL);
	}
	free(text);
	if (st != USERS_OK) {
		users_free(fresh);
		return st;
	}
	adopt(u, fresh);
	return USERS_OK;
}


/* Readers see the old file or the new one, never a mix (savefile.h). */
enum users_status
users_save(struct users *u)
{
	struct sbuf b = { NULL, 0, 0, false };
	enum users_status st = USERS_NOMEM;
	int saved;

	assert(u != NULL);
	if (!serialize(u, &b)) {
		errno = ENOMEM;
	} else {
		switch (savefile_replace(u->path, b.data, b.len)) {
		case SAVEFILE_OK:
			st = USERS_OK;
			break;
		case SAVEFILE_UNSYNCED:
			st = USERS_UNSYNCED;
			break;
		case SAVEFILE_NOMEM:
			st = USERS_NOMEM;
			break;
		case SAVEFILE_FAILED:
			st = USERS_IO;
			break;
		}
	}
	saved = errno;
	free(b.data);
	errno = saved;
	return st;
}

bool
users_valid_name(const char *name)
{
	size_t i;
	char c;

	if (name == NULL || name[0] == '\0' || name[0] == '.')
		return false;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= USER_NAME_MAX)
			return false;
		c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool
users_valid_password(const char *password)
{
	size_t i;

	if (password == NULL || password[0] == '\0')
		return false;
	for (i = 0; password[i] != '\0'; i++) {
		if (i >= PASSWORD_MAX)
			return false;
		if (password[i] < 0x21 || password[i] > 0x7e)
			return false;
	}
	return true;
}

size_t
users_count(const struct users *u)
{
	return u->nacc;
}

const char *
users_name_at(const struct users *u, size_t i)
{
	return i < u->nacc ? u->acc[i].name : NULL;
}

size_t
users_index_after(const struct users *u, const char *name)
{
	bool found;
	size_t i = acc_find(u, name, &found);

	return found ? i + 1 : i;
}

bool
users_exists(const struct users *u, const char *name)
{
	bool found;

	if (name == NULL)
		return false;
	(void)acc_find(u, name, &found);
	return found;
}

/* The MAC of a password, bound to the account's current hash. */
static uint64_t
login_mac(const struct users *u, const struct account *a,
    const char *password)
{
	return siphash24(u->cache_key, (const unsigned char *)password,
	    strlen(password)) ^ siphash24(u->cache_key,
	    (const unsigned char *)a->hash, strlen(a->hash));
}

bool
users_verify_cached(struct users *u, const char *name, const char *password)
{
	bool found;
	size_t i;
	const struct account *a;

	if (name == NULL || password == NULL)
		return false;
	i = acc_find(u, name, &found);
	if (!found)
		return false;
	a = &u->acc[i];
	return a->cache_until > now_ms() &&
	    login_mac(u, a, password) == a->cache_mac;
}

bool
users_verify(struct users *u, const char *name, const char *password)
{
	const char *stored = dummy_hash;
	bool found = false, ok;
	size_t i = 0;
	char *h;

	assert(u != NULL && password != NULL);
	if (name != NULL) {
		i = acc_find(u, name, &found);
		if (found)
			stored = u->acc[i].hash;
	}
	h = crypt(password, stored);
	/* A failure token ("*0") never equals a stored hash; be explicit. */
	ok = h != NULL && h[0] != '*' && ct_streq(h, stored);
	if (h != NULL)
		wipe(h, strlen(h));
	if (found && ok) {
		u->acc[i].cache_mac = login_mac(u, &u->acc[i], password);
		u->acc[i].cache_until = now_ms() +
		    (uint64_t)LOGIN_CACHE_TTL * 1000;
	}
	return found && ok;
}

enum users_status
users_add(struct users *u, const char *name, const char *password)
{
	char hash[HASH_MAX];
	enum users_status st;
	size_t pos;
	bool found;

	if (!users_valid_name(name))
		return USERS_BADNAME;
	if (!users_valid_password(password))
		return USERS_BADPASS;
	pos = acc_find(u, name, &found);
	if (found)
		return USERS_EXISTS;
	if (u->nacc >= users_max(u))
		return USERS_FULL;
	st = hash_password(password, hash);
	if (st != USERS_OK)
		return st;
	return acc_insert(u, pos, name, hash);
}

enum users_status
users_set_password(struct users *u, const char *name, const char *password)
{
	char hash[HASH_MAX];
	enum users_status st;
	struct account a;
	size_t i;
	bool found;

	if (name == NULL)
		return USERS_NOTFOUND;
	i = acc_find(u, name, &found);
	if (!found)
		return USERS_NOTFOUND;
	if (!users_valid_password(password))
		return USERS_BADPASS;
	st = hash_password(password, hash);
	if (st != USERS_OK)
		return st;
	if (acc_make(&a, name, hash) != USERS_OK)
		return USERS_NOMEM;
	free(u->acc[i].name);
	u->acc[i] = a;
	return USERS_OK;
}

enum users_status
users_delete(struct users *u, const char *name)
{
	size_t i;
	bool found;

	if (name == NULL)
		return USERS_NOTFOUND;
	i = acc_find(u, name, &found);
	if (!found)
		return USERS_NOTFOUND;
	free(u->acc[i].name);
	memmove(&u->acc[i], &u->acc[i + 1],
	    (u->nacc - i - 1) * sizeof(*u->acc));
	u->nacc--;
	return USERS_OK;
}

unsigned long
users_setting(const struct users *u, const char *key, unsigned long dflt)
{
	const struct setting *s = set_find(u, key);

	return s != NULL && s->text == NULL ? s->value : dflt;
}

const char *
users_setting_text(const struct users *u, const char *key)
{
	const struct setting *s = set_find(u, key);

	return s != NULL ? s->text : NULL;
}

enum users_status
users_set_setting_text(struct users *u, const char *key, const char *text)
{
	struct setting *s;
	char *copy = NULL;
	enum users_status st;

	if (key == NULL || !valid_key(key, strlen(key)))
		return USERS_PARSE;
	if (text != NULL) {
		if (*text == '\0' || strpbrk(text, "\r\n") != NULL)
			return USERS_PARSE;
		copy = strdup(text);
		if (copy == NULL)
			return USERS_NOMEM;
	}
	s = set_find(u, key);
	if (s == NULL && copy == NULL)
		return USERS_OK;
	if (s == NULL) {
		st = set_append(u, key, 0);
		if (st != USERS_OK) {
			free(copy);
			return st;
		}
		s = &u->set[u->nset - 1];
	}
	free(s->text);
	s->text = copy;
	if (copy == NULL) {
		/* Removed: the key goes too, keeping the others in order. */
		free(s->key);
		memmove(s, s + 1, (size_t)(&u->set[u->nset] - (s + 1)) *
		    sizeof(*s));
		u->nset--;
	}
	return USERS_OK;
}

/* A key outside [a-z_]+ could not be written back: USERS_PARSE. */
enum users_status
users_set_setting(struct users *u, const char *key, unsigned long value)
{
	struct setting *s;

	if (key == NULL || !valid_key(key, strlen(key)))
		return USERS_PARSE;
	s = set_find(u, key);
	if (s != NULL) {
		free(s->text);
		s->text = NULL;
		s->value = value;
		return USERS_OK;
	}
	return set_append(u, key, value);
}

size_t
users_max(const struct users *u)
{
	unsigned long v = users_setting(u, SETTING_MAX_USERS,
	    DEFAULT_MAX_USERS);

#if ULONG_MAX > SIZE_MAX
	if (v > SIZE_MAX)
		return SIZE_MAX;
#endif
	return (size_t)v;
}

bool
users_random_password(char *buf, size_t len)
{
	unsigned char rnd[64];
	size_t i = 0, j = sizeof(rnd);
	bool ok = true;

	if (buf == NULL || len == 0)
		return false;
	while (i < len - 1) {
		if (j == sizeof(rnd)) {
			if (random_bytes(rnd, sizeof(rnd)) == -1) {
				ok = false;
				break;
			}
			j = 0;
		}
		/* Rejection sampling: a plain modulo would be biased. */
		if (rnd[j] < PASS_REJECT)
			buf[i++] = pass_chars[rnd[j] % PASS_NCHARS];
		j++;
	}
	wipe(rnd, sizeof(rnd));
	if (!ok) {
		wipe(buf, len);
		return false;
	}
	buf[len - 1] = '\0';
	return true;
}

const char *
users_strerror(enum users_status st)
{
	switch (st) {
	case USERS_OK:
		return "success";
	case USERS_NOMEM:
		return "out of memory";
	case USERS_IO:
		return "users file could not be read or written";
	case USERS_PARSE:
		return "malformed line, or a value out of range, in users file";
	case USERS_BADNAME:
		return "invalid user name";
	case USERS_BADPASS:
		return "invalid password";
	case USERS_EXISTS:
		return "user already exists";
	case USERS_NOTFOUND:
		return "no such user";
	case USERS_FULL:
		return "maximum number of users reached";
	case USERS_UNSYNCED:
		return "saved, but its folder could not be synced to disk";
	}
	return "unknown error";
}
