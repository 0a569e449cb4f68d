"""Hostile input: user names that try to leave the mail root through
AUTH PLAIN, MGMT ADD_USER, -u and a planted users-file line (USER is in
tests/protocol); log injection through names; AUTH PLAIN acting as
another user with a warm login cache; unknown user and wrong password
indistinguishable by text, time and CPU; no password in the log from
any path; the users and log files stay 0600 under umask 0."""
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

from hardlib import (ADMIN_PW, AUTH_FAILED, SERVER_BIN, HardTest, Server,
                     b64, cpu_ns, file_mode, free_port, mgmt,
                     parse_users_file, plant_maildir, pop3_pass_reply,
                     snapshot)

LONG_OK = "u" * 64
MARKER = b"PLANTED-OUTSIDE-THE-MAIL-ROOT-5150"

# Names that would resolve outside the mail root, or to the root itself,
# or that only differ from a valid name by what a truncation would cut.
HOSTILE = ["../outside", "..", ".", "../outside/", "outside/../../outside",
           "alice/../../outside", "./../outside", ".hidden", "a/b",
           "/ABS", "alice/..", "..\\outside", "u" * 65, LONG_OK + "/",
           LONG_OK + "x" * 40, "x" * 150, "al ice", "alice\t", "~alice",
           "alice*", "%2e%2e%2foutside", "\u00e9l\u00e8ve"]


class PlantedRoots:
    """Maildirs planted where a hostile name could lead: next to the mail
    root (../outside), the root's parent (..), the root itself (.), an
    absolute path; plus a snapshot of all of it."""

    def __init__(self, srv):
        self.srv = srv
        self.abs_dir = os.path.join(srv.tmp, "ABS")
        self.paths = []
        self.paths += plant_maildir(os.path.join(srv.tmp, "outside"), MARKER)
        self.paths += plant_maildir(srv.tmp, MARKER)            # ".."
        self.paths += plant_maildir(srv.maildir, MARKER)        # "."
        self.paths += plant_maildir(self.abs_dir, MARKER)
        self.before = self.state()

    def state(self):
        snap = snapshot(self.srv.tmp)
        # what the server may legitimately change
        return {k: v for k, v in snap.items()
                if not (k.startswith("mail" + os.sep + "alice")
                        or k.startswith("mail" + os.sep + "bob")
                        or k.startswith("mail" + os.sep + LONG_OK)
                        or k in ("server.log", "users"))}

    def assert_untouched(self, test):
        after = self.state()
        changed = sorted(k for k in set(self.before) | set(after)
                         if self.before.get(k) != after.get(k))
        test.assertEqual(changed, [], "paths outside the maildrops changed")
        for p in self.paths:
            test.assertTrue(os.path.exists(p), p)


def run_briefly(argv, limit=5.0):
    """Runs the server binary expecting it to exit on its own; a server
    still running after `limit` seconds is killed and reported."""
    try:
        return subprocess.run(argv, capture_output=True, timeout=limit,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("%r kept running (it should have refused to "
                             "start)" % argv[-2:])


def parallel(fn, items):
    """Runs fn(item) in one thread per item; returns {item: result or
    ('exception', repr)}."""
    out = {}

    def run(item):
        try:
            out[item] = fn(item)
        except Exception as e:      # asserted by the caller
            out[item] = ("exception", repr(e))
    ts = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


class HostileNames(HardTest):
    USERS = {"admin": ADMIN_PW, "alice": "secret", "bob": "secret",
             LONG_OK: "secret"}

    def names(self, srv):
        # "/ABS" stands for an absolute path that exists
        return [srv.tmp + "/ABS" if n == "/ABS" else n for n in HOSTILE]

    def plain_attempt(self, srv, raw):
        c = srv.client(timeout=15)
        try:
            c.greeting()
            line = "AUTH PLAIN " + b64(raw)
            if len(line) + 2 > 255:
                # too long for one line: the continuation form
                self.assertTrue(c.cmd("AUTH PLAIN").startswith("+"))
                line = b64(raw)
            r = c.cmd(line).strip()
            if r.startswith("+OK"):
                c.cmd("QUIT")
            return r
        finally:
            c.close()

    def test_auth_plain_hostile_names_never_leave_the_root(self):
        with Server(users=self.USERS) as srv:
            planted = PlantedRoots(srv)
            tries = []
            for n in self.names(srv):
                nb = n.encode("utf-8")
                tries += [b"\0" + nb + b"\0secret",          # authcid
                          nb + b"\0" + nb + b"\0secret",     # both
                          nb + b"\0alice\0secret",           # authzid
                          b"\0" + nb + b"\0\0secret",        # extra NUL
                          b"\0alice\0" + b"secret\0" + nb]   # NUL in pw
            tries += [b"\0alice\0secret\0", b"alice\0\0secret",
                      b"\0" + LONG_OK.encode() + b"u\0secret",
                      b"\0" + LONG_OK[:-1].encode() + b"\0secret",
                      b"\0alice\x00\0secret", b"\0\0secret"]
            out = parallel(lambda raw: self.plain_attempt(srv, raw), tries)
            for raw in tries:
                r = out[raw]
                self.assertIsInstance(r, str, "%r: %r" % (raw, r))
                self.assertTrue(r.startswith("-ERR"),
                                "AUTH PLAIN %r -> %r" % (raw, r))
            self.assertIsNone(srv.proc.poll(), "server died")
            planted.assert_untouched(self)
            # the valid names still work, the 64-character one included
            for user in ("alice", LONG_OK):
                r = self.plain_attempt(srv, b"\0" + user.encode()
                                       + b"\0secret")
                self.assertTrue(r.startswith("+OK"), "%s: %r" % (user, r))
            planted.assert_untouched(self)

    def test_mgmt_add_user_hostile_names_never_leave_the_root(self):
        with Server(users=self.USERS) as srv:
            planted = PlantedRoots(srv)
            with open(srv.users_file, "rb") as f:
                before_file = f.read()
            m = mgmt(srv)
            before_users = m.users()
            names = self.names(srv) + ["ali\x00ce", "..\x00", "a\rb",
                                       "x" * 240]
            for n in names:
                with self.subTest(name=n[:40]):
                    r = m.ask(b"ADD_USER " + n.encode("utf-8")
                              + b" Pw-12345")
                    self.assertTrue(r.startswith("-ERR"), "%r -> %r"
                                    % (n, r))
                    if n.startswith(LONG_OK):
                        self.assertNotIn("ALREADY EXISTS", r, "%r was "
                                         "truncated to a valid name" % n)
            self.assertTrue(m.ask("NOOP").startswith("+OK"))
            self.assertEqual(m.users(), before_users)
            with open(srv.users_file, "rb") as f:
                self.assertEqual(f.read(), before_file)
            planted.assert_untouched(self)
            # nothing half-added: none of them can log in
            simple = [n for n in names if "\x00" not in n and "\r" not in n
                      and " " not in n and len(n) < 200]
            out = parallel(lambda n: pop3_pass_reply(srv, n, "Pw-12345"),
                           simple)
            for n in simple:
                self.assertEqual(out[n], AUTH_FAILED, n)
            planted.assert_untouched(self)
            m.close()

    def test_hostile_names_from_the_command_line_and_users_file(self):
        tmp = tempfile.mkdtemp(prefix="hard-cli-")
        try:
            root = os.path.join(tmp, "mail")
            os.mkdir(root)
            planted = plant_maildir(os.path.join(tmp, "outside"), MARKER)
            before = snapshot(tmp)
            users = os.path.join(tmp, "users")
            base = [SERVER_BIN, "-p", str(free_port()), "-P",
                    str(free_port()), "-l", "127.0.0.1", "-d", root,
                    "-U", users]
            for spec in ("../outside:pw", "..:pw", "a/b:pw", ".x:pw",
                         "u" * 65 + ":pw", tmp + "/outside:pw"):
                with self.subTest(spec=spec):
                    p = run_briefly(base + ["-u", spec])
                    self.assertEqual(p.returncode, 2, p.stderr)
                    self.assertEqual(snapshot(tmp), before)
            # a users file with a hostile account line (planted by hand,
            # or by a broken provisioning script): the server refuses to
            # start, names the line, and touches nothing
            fake_hash = "$6$abcdefghijklmnop$" + "x" * 86
            for bad in ("../outside", "..", ".hidden", "a/b",
                        tmp + "/outside", "u" * 65):
                with self.subTest(users_line=bad):
                    with open(users, "w") as f:
                        f.write("alice:%s\n%s:%s\n" % (fake_hash, bad,
                                                       fake_hash))
                    os.chmod(users, 0o600)
                    snap = snapshot(tmp)
                    p = run_briefly(base)
                    self.assertNotEqual(p.returncode, 0,
                                        "started with a users-file account "
                                        "named %r" % bad)
                    self.assertIn(b"line 2", p.stderr)
                    self.assertEqual(snapshot(tmp), snap)
            for q in planted:
                self.assertTrue(os.path.exists(q))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_names_cannot_forge_log_lines(self):
        fake = ("2030-01-01T00:00:00.000Z info: pop3[99] 10.0.0.1:1 "
                "user=alice login")
        with Server(users={"alice": "secret"}) as srv:
            c = srv.client()
            c.greeting()
            for raw in (b"\0x\n" + fake.encode() + b"\0pw",
                        b"\0x\r" + fake.encode() + b"\0pw",
                        b"\0\x1b[2J\x1b[1;1H" + b"\0pw"):
                r = c.cmd("AUTH PLAIN " + b64(raw))
                self.assertTrue(r.startswith("-ERR"), r)
            c.close()
            c = srv.client()
            c.greeting()
            c.send(b"USER x\r" + fake.encode()[:150] + b"\r\n")
            c.line()
            c.send(b"USER \x1b]0;owned\x07\x08\x7f\r\n")
            c.line()
            r = c.cmd("PASS pw")
            self.assertTrue(r.startswith("-ERR"), r)
            c.close()
            self.assertEqual(srv.stop(), 0)
            log = srv.log_text()
            stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
            for ln in log.splitlines():
                if ln.startswith("pop3server:"):
                    continue            # start-up messages on stderr
                self.assertTrue(stamp.match(ln), "not a log line: %r" % ln)
                self.assertFalse(ln.startswith("2030-"), "forged: %r" % ln)
            for ch in "\r\x1b\x07\x08\x7f":
                self.assertNotIn(ch, log, "control character %r logged"
                                 % ch)

    def test_overlong_name_is_not_logged_as_a_real_one(self):
        # Cut to the longest valid name, it would read as a failed
        # login of that account: the cut shows.
        with Server(users={"alice": "secret", "a" * 64: "secret"}) as srv:
            c = srv.client()
            c.greeting()
            self.assertTrue(c.cmd("USER " + "a" * 65).startswith("+OK"))
            self.assertTrue(c.cmd("PASS x").startswith("-ERR [AUTH]"))
            c.close()
            self.assertTrue(srv.wait_log(r"user=%s\? login-failed"
                                         % ("a" * 63), 5), srv.log_text())
            self.assertNotIn("user=%s " % ("a" * 64), srv.log_text())


class ActingAsAnotherUser(HardTest):
    def test_authzid_other_than_user_refused_with_warm_cache(self):
        # alice and bob share a password and have both just logged in
        # (their logins are in the cache): asking to act as the other is
        # still refused, and nobody is logged in or locked by it.
        with Server(users={"alice": "secret", "bob": "secret",
                           "admin": ADMIN_PW}) as srv:
            for u in ("alice", "bob"):
                self.assertTrue(pop3_pass_reply(srv, u, "secret")
                                .startswith("+OK"))
            attempts = [b"bob\0alice\0secret", b"alice\0bob\0secret",
                        b"admin\0alice\0secret", b"Alice\0alice\0secret",
                        b"alice \0alice\0secret"]

            def one(raw):
                c = srv.client()
                try:
                    c.greeting()
                    t0 = time.monotonic()
                    r1 = c.cmd("AUTH PLAIN " + b64(raw))
                    dt = time.monotonic() - t0
                    r2 = c.cmd("STAT")
                    return r1.strip(), dt, r2
                finally:
                    c.close()
            out = parallel(one, attempts)
            for raw in attempts:
                self.assertIsInstance(out[raw], tuple, out[raw])
                r1, dt, r2 = out[raw]
                self.assertEqual(r1, AUTH_FAILED, raw)
                self.assertGreaterEqual(dt, 0.8, "%r answered at once: a "
                                        "cache hit?" % raw)
                self.assertTrue(r2.startswith("-ERR"), "%r then STAT: %r"
                                % (raw, r2))
            # the continuation form too
            c = srv.client()
            c.greeting()
            self.assertTrue(c.cmd("AUTH PLAIN").startswith("+"))
            self.assertEqual(c.cmd(b64(b"bob\0alice\0secret")).strip(),
                             AUTH_FAILED)
            c.close()
            # nobody is locked: both log in at once
            for u in ("alice", "bob"):
                t0 = time.monotonic()
                r = pop3_pass_reply(srv, u, "secret")
                self.assertTrue(r.startswith("+OK"), "%s: %r" % (u, r))
                self.assertLess(time.monotonic() - t0, 0.8)
            logins = re.findall(r"user=(\w+) login$", srv.log_text(),
                                re.M)
            self.assertEqual(sorted(logins), ["alice", "alice", "bob",
                                              "bob"], logins)


class SameAnswerSameTime(HardTest):
    """Unknown user and wrong password: same text, same delay, same
    work (the server runs crypt(3) for an unknown user too).  Compared
    against wrong passwords of an account whose good password is in the
    login cache, never against a cached success."""

    LIMIT = 120
    CONNS = 12
    PER_CONN = 2

    def batch(self, srv, attempt):
        """CONNS connections in parallel, PER_CONN failures each; returns
        (server CPU seconds, [(seconds, USER reply, reply)])."""
        out = []
        lock = threading.Lock()

        def conn(_):
            c = srv.client(timeout=20)
            try:
                c.greeting()
                for _ in range(self.PER_CONN):
                    res = attempt(c)
                    with lock:
                        out.append(res)
            finally:
                c.close()
        c0 = cpu_ns(srv.pid)
        parallel(conn, list(range(self.CONNS)))
        return (cpu_ns(srv.pid) - c0) / 1e9, out

    @staticmethod
    def user_pass(user, pw):
        def attempt(c):
            ru = c.cmd("USER " + user).strip()
            t0 = time.monotonic()
            r = c.cmd("PASS " + pw)
            return time.monotonic() - t0, ru, r.strip()
        return attempt

    @staticmethod
    def plain(raw):
        def attempt(c):
            t0 = time.monotonic()
            r = c.cmd("AUTH PLAIN " + b64(raw))
            return time.monotonic() - t0, "", r.strip()
        return attempt

    def test_unknown_user_and_wrong_password_indistinguishable(self):
        with Server(users={"alice": "secret", "bob": "hunter2"}) as srv:
            for _ in range(2):      # alice's good password is cached
                self.assertTrue(pop3_pass_reply(srv, "alice", "secret")
                                .startswith("+OK"))
            kinds = {
                "wrong password": self.user_pass("alice", "Wrong-pw-1"),
                "unknown user": self.user_pass("nosuchuser", "Wrong-pw-1"),
                "invalid name": self.user_pass("../alice", "Wrong-pw-1"),
                "PLAIN wrong password": self.plain(b"\0bob\0Wrong-pw-1"),
                "PLAIN unknown user": self.plain(b"\0nobody\0Wrong-pw-1"),
            }
            cpu = {}
            res = {}
            # interleaved rounds, so drift hits every kind alike
            for rnd in range(2):
                for name, attempt in kinds.items():
                    if rnd == 1 and name.startswith("PLAIN"):
                        continue
                    c, r = self.batch(srv, attempt)
                    cpu[name] = cpu.get(name, 0.0) + c
                    res.setdefault(name, []).extend(r)
            replies = {name: sorted(set(r[2] for r in rs))
                       for name, rs in res.items()}
            for name, rs in replies.items():
                self.assertEqual(rs, [AUTH_FAILED], "%s: %r" % (name, rs))
            users = set(r[1] for name, rs in res.items() for r in rs
                        if not name.startswith("PLAIN"))
            self.assertEqual(users, {"+OK send PASS"},
                             "USER must not tell names apart")
            med = {name: statistics.median(r[0] for r in rs)
                   for name, rs in res.items()}
            p90 = {name: sorted(r[0] for r in rs)[int(len(rs) * 0.9)]
                   for name, rs in res.items()}
            summary = ", ".join("%s: median %.3f p90 %.3f cpu %.3f"
                                % (n, med[n], p90[n], cpu[n]) for n in med)
            if os.environ.get("HARDENING_VERBOSE"):
                print("\n" + summary)
            for name in med:
                self.assertGreaterEqual(min(r[0] for r in res[name]), 0.8,
                                        "%s answered too soon: %s"
                                        % (name, summary))
                self.assertLess(abs(med[name] - med["wrong password"]),
                                0.05, summary)
                self.assertLess(abs(p90[name] - p90["wrong password"]),
                                0.15, summary)
            # the same work: crypt(3) runs for unknown and invalid names
            # too (the same number of attempts in each kind)
            for name in ("unknown user", "invalid name"):
                ratio = cpu[name] / max(cpu["wrong password"], 1e-6)
                self.assertGreater(ratio, 0.5, "an unknown user costs the "
                                   "server much less CPU: " + summary)
                self.assertLess(ratio, 2.0, summary)
            ratio = cpu["PLAIN unknown user"] / max(
                cpu["PLAIN wrong password"], 1e-6)
            self.assertGreater(ratio, 0.5, summary)
            self.assertLess(ratio, 2.0, summary)


class Secrets(HardTest):
    LIMIT = 120

    def test_no_password_in_the_log_from_any_path(self):
        pw = {"alice": "Alice-Pw.4417", "admin": "Admin-Pw.8810"}
        wrong = ["Wrong-Pw.%d-%d" % (i, i * 7919) for i in range(12)]
        added, new_admin = "Added-Pw.3391", "New-Admin-Pw.6066"
        filt = 'env | sed -n "s/^POP3_/X-POP3-/p"; cat'
        with Server(users=pw, args=["-t", filt]) as srv:
            secrets = list(pw.values()) + wrong + [added, new_admin]
            # POP3: good and bad USER/PASS, PASS in the wrong state, a
            # PASS line too long, AUTH PLAIN both forms
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS " + wrong[0]).startswith("-ERR"))
            c.cmd("USER nosuchuser")
            self.assertTrue(c.cmd("PASS " + wrong[1]).startswith("-ERR"))
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS " + pw["alice"]).startswith("+OK"))
            self.assertTrue(c.cmd("PASS " + wrong[2]).startswith("-ERR"))
            self.assertTrue(c.cmd("USER " + wrong[3]).startswith("-ERR"))
            first, body = c.multi("RETR 1")
            self.assertTrue(first.startswith("+OK"), first)
            self.assertIn(b"X-POP3-USERNAME=alice", body)
            self.assertNotIn(pw["alice"].encode(), body,
                             "the filter's environment holds the password")
            c.quit()
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            c.send("PASS " + wrong[4] + "x" * 260 + "\r\n")
            self.assertTrue(c.line().startswith(b"-ERR"))
            ok = b64(b"\0alice\0" + pw["alice"].encode())
            bad = b64(b"alice\0alice\0" + wrong[5].encode())
            secrets += [ok, bad]
            self.assertTrue(c.cmd("AUTH PLAIN " + bad).startswith("-ERR"))
            self.assertTrue(c.cmd("AUTH PLAIN").startswith("+"))
            self.assertTrue(c.cmd(ok).startswith("+OK"))
            c.quit()
            # MGMT: bad PASS, PASS without USER, good PASS, ADD_USER with
            # and without the right arity, CHANGE_PASSWORD wrong and right
            m = mgmt(srv, login=False)
            m.text()
            self.assertTrue(m.ask("PASS " + wrong[6]).startswith("-ERR"))
            m.ask("USER admin")
            self.assertTrue(m.ask("PASS " + wrong[7]).startswith("-ERR"))
            m.close()
            m = mgmt(srv, password=pw["admin"])
            m.ok("ADD_USER carol " + added)
            self.assertTrue(m.ask("ADD_USER dave " + wrong[8] + " extra")
                            .startswith("-ERR"))
            self.assertTrue(m.ask("ADD_USER ../x " + wrong[9])
                            .startswith("-ERR"))
            self.assertTrue(m.ask("CHANGE_PASSWORD %s %s" % (wrong[10],
                                                             wrong[11]))
                            .startswith("-ERR"))
            m.ok("CHANGE_PASSWORD %s %s" % (pw["admin"], new_admin))
            m.ok("RESET_USER_PASSWORD carol")
            m.ask("QUIT")
            m.close()
            self.assertTrue(pop3_pass_reply(srv, "carol", "carol")
                            .startswith("+OK"))
            self.assertEqual(srv.stop(), 0)
            log = srv.log_text()
            self.assertIn("login-failed", log)
            for s in secrets:
                self.assertNotIn(s, log, "a password is in the log")
            with open(srv.users_file) as f:
                text = f.read()
            for s in secrets:
                self.assertNotIn(s, text, "a password is in the users file")

    def test_users_and_log_files_stay_0600_under_umask_0(self):
        logdir = tempfile.mkdtemp(prefix="hard-log-")
        logfile = os.path.join(logdir, "access.log")
        try:
            with Server(users={"admin": ADMIN_PW, "alice": "secret"},
                        args=["--log", logfile],
                        preexec_fn=lambda: os.umask(0)) as srv:
                self.assertEqual(file_mode(srv.users_file), 0o600)
                self.assertEqual(file_mode(logfile), 0o600)
                # an operator left it world-readable: the next start
                # rewrites it 0600 again
                srv.stop()
                os.chmod(srv.users_file, 0o666)
                srv.start()
                self.assertEqual(file_mode(srv.users_file), 0o600)
                m = mgmt(srv)
                for cmd in ("ADD_USER carol Carol-pw-1", "MAX_USERS 500",
                            "MAX_CONNEC 100", "IDLE_TIMEOUT 120",
                            "RESET_USER_PASSWORD carol", "FILTER cat",
                            "FILTER -", "DELETE_USER carol",
                            "CHANGE_PASSWORD %s Adm-pw-2" % ADMIN_PW):
                    with self.subTest(cmd=cmd):
                        m.ok(cmd)
                        self.assertEqual(file_mode(srv.users_file), 0o600)
                        left = [n for n in os.listdir(srv.tmp)
                                if ".tmp." in n]
                        self.assertEqual(left, [])
                m.close()
                parse_users_file(srv.users_file)
                self.assertEqual(file_mode(logfile), 0o600)
        finally:
            shutil.rmtree(logdir, ignore_errors=True)
