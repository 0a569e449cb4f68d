#!/usr/bin/env bash
# bench/run.sh (`make bench`): every scenario of docs/performance.md
# against bin/pop3server ("ours") and a private Dovecot ("dovecot"),
# alternating ours, dovecot, ours, dovecot ... for BENCH_ROUNDS rounds.
# Prints a table with medians, ratios and min-max spreads and PASS/MISS
# per target; writes bench/results.json and refreshes the results in
# docs/performance.md.
#
# Environment:
#   BENCH_ROUNDS=3   rounds (each scenario runs A B per round)
#   BENCH_QUICK=1    one round, 1-second durations: a fast pass whose
#                    numbers do not go into docs/performance.md
#   BENCH_ONLY="sessions retr ..."  run only these scenarios (sessions,
#                    storm, retr, hold, fair, list); docs not updated
#   BENCH_TMP=DIR    where the fixtures go (default /var/tmp; ~1.5 GB)
#   BENCH_KEEP=1     keep the temporary directory (logs, raw results)
#   BENCH_DOVECOT_POP3_CLIENTS=50  sessions per Dovecot pop3 process
#
# Needs root: it installs dovecot-core, dovecot-pop3d and python3 with
# apt-get when missing, and runs Dovecot (as a private instance with its
# own config, bench/dovecot/dovecot.conf.in, on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROUNDS=${BENCH_ROUNDS:-3}
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-}
NPROC=$(nproc)
NUSERS=10000
LG=$ROOT/build/bench/loadgen
PLAIN=$ROOT/build/bench/plainserver
USERS_CACHE=$ROOT/build/bench/users-$NUSERS.cache
T_START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "$QUICK" = 1 ]; then
	ROUNDS=1
	DUR=1
else
	DUR=3
fi

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it installs and runs Dovecot"

# --- Tools ---------------------------------------------------------------

install_deps() {
	if ! command -v python3 >/dev/null 2>&1; then
		log "installing python3"
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends python3 >/dev/null
	fi
	bench/dovecot/install.sh || die "Dovecot is missing"
}

install_deps
make -s all bench-tools >&2

# Another busy process on the two cores shows up as noise (or worse).
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN { exit !(l >= 1.0) }'; then
	log "warning: load average $LOAD_BEFORE before the run: the machine is busy, numbers will be noisy"
fi

# --- A temporary directory for everything of this run ---------------------

BT=$(mktemp -d "${BENCH_TMP:-/var/tmp}/pop3bench.XXXXXX")
chmod 0755 "$BT"
# The server under test, copied: a rebuild of bin/ during the run (the
# work tree may be in use) must not change what is measured.
SERVER=$BT/pop3server
cp bin/pop3server "$SERVER"
OURS_PID=
DOVE_CONF=
PLAIN_PIDS=()

cleanup() {
	local rc=$?

	set +e
	[ -n "$OURS_PID" ] && kill "$OURS_PID" 2>/dev/null
	[ -n "$DOVE_CONF" ] && /usr/sbin/dovecot -c "$DOVE_CONF" stop \
		>/dev/null 2>&1
	[ -n "${DOVE_PID:-}" ] && sleep 0.5 && kill "$DOVE_PID" 2>/dev/null
	for p in "${PLAIN_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		log "kept $BT"
	else
		rm -rf "$BT"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {	# PORT: until something accepts on it (10 s at most)
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "nothing listens on port $1"
}

# Connections still established to PORT (server side), from /proc.
established() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$2 ~ p"$" && $4 == "01" { n++ } END { print n+0 }' \
		/proc/net/tcp
}

wait_drain() {	# PORT: until the server has let go of every session
	for _ in $(seq 300); do
		[ "$(established "$1")" -eq 0 ] && return 0
		sleep 0.1
	done
	log "warning: port $1 still has $(established "$1") sessions"
}

# --- Fixtures --------------------------------------------------------------

MAIL_UID=$(id -u mail)
MAIL_GID=$(id -g mail)

log "fixtures in $BT (messages of 1 MiB, 100 MiB, 1 GiB; $NUSERS maildrops; 10,000-message maildrop)"
python3 bench/mkfixtures.py "$BT" "$NUSERS" "$MAIL_UID" "$MAIL_GID"

# Users: bin/pop3server hashes them itself (-u, crypt SHA-512); the file
# is kept in build/bench/ because 10,000 hashes take a while.
make_users() {
	local out=$1 tmp mail port mport args i batch pid
	tmp=$(mktemp -d "$BT/users.XXXXXX")
	mail=$tmp/mail
	mkdir -p "$mail"
	printf 'max_users=20000\n' >"$tmp/users"
	batch=0
	add_batch() {	# -u options: pop3server hashes, saves, says ready
		local err
		batch=$((batch + 1))
		err=$tmp/err.$batch
		: >"$err"
		port=$(free_port)
		mport=$(free_port)
		"$SERVER" -p "$port" -l 127.0.0.1 -P "$mport" -L 127.0.0.1 \
			-d "$mail" -U "$tmp/users" "$@" 2>>"$err" &
		pid=$!
		for _ in $(seq 1200); do
			grep -q ' ready' "$err" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		grep -q ' ready' "$err" || { cat "$err" >&2; die "pop3server -u failed"; }
	}
	args=()
	for ((i = 0; i < NUSERS; i++)); do
		args+=(-u "u$i:pw$i")
		if [ ${#args[@]} -ge 8000 ]; then	# 4000 users per run
			add_batch "${args[@]}"
			args=()
		fi
	done
	for u in r0 r1 r2 r3 huge giant many; do
		args+=(-u "$u:pw-$u")
	done
	add_batch "${args[@]}"
	[ "$(grep -c '^u[0-9]*:' "$tmp/users")" -eq "$NUSERS" ] ||
		die "users file has $(grep -c '^u[0-9]*:' "$tmp/users") of $NUSERS users"
	mv "$tmp/users" "$out"
	rm -rf "$tmp"
}

if [ ! -s "$USERS_CACHE" ]; then
	log "hashing $NUSERS passwords with bin/pop3server -u (cached in $USERS_CACHE)"
	make_users "$USERS_CACHE.tmp"
	mv "$USERS_CACHE.tmp" "$USERS_CACHE"
fi
cp "$USERS_CACHE" "$BT/ours.users"
chmod 0600 "$BT/ours.users"

# Dovecot's passwd-file: the same $6$ hashes, uid/gid of "mail".
DV=$BT/dovecot
mkdir -p "$DV/base" "$DV/state" "$DV/index" "$DV/control"
chown "$MAIL_UID:$MAIL_GID" "$DV/index" "$DV/control"
awk -F: -v uid="$MAIL_UID" -v gid="$MAIL_GID" -v mail="$BT/dove" '
	/^#/ || !/^[^=]*:\$/ { next }
	{ printf "%s:{SHA512-CRYPT}%s:%s:%s::%s/%s::\n", $1, $2, uid, gid, mail, $1 }
' "$BT/ours.users" >"$DV/passwd"
chgrp dovecot "$DV/passwd"
chmod 0640 "$DV/passwd"

SIZES=$BT/sizes.json
size_of() { python3 -c "import json,sys; d=json.load(open('$SIZES')); print(d['$1']['$2'])"; }
W1M=$(size_of m1mb wire)
W100M=$(size_of m100mb wire)
W1G=$(size_of m1gb wire)
F1M=$(size_of m1mb file)
F100M=$(size_of m100mb file)

# --- Servers ---------------------------------------------------------------

P_OURS=$(free_port)
P_MGMT=$(free_port)
P_DOVE=$(free_port)
P_PLAIN1M=$(free_port)		# sendfile
P_PLAIN100M=$(free_port)
P_PLAIN1M_RW=$(free_port)	# read/write
P_PLAIN100M_RW=$(free_port)

start_ours() {
	(
		ulimit -n "$(ulimit -Hn)"
		exec "$SERVER" -p "$P_OURS" -l 127.0.0.1 -P "$P_MGMT" \
			-L 127.0.0.1 -d "$BT/ours" -U "$BT/ours.users" -T 600 \
			--log "$BT/ours.log" 2>>"$BT/ours.err"
	) &
	OURS_PID=$!
	wait_port "$P_OURS"
}

stop_ours() {
	kill "$OURS_PID" 2>/dev/null || true
	wait "$OURS_PID" 2>/dev/null || true
	OURS_PID=
}

# Sessions per Dovecot pop3 process (see dovecot.conf.in).
POP3_CLIENTS=${BENCH_DOVECOT_POP3_CLIENTS:-50}
POP3_PROCS=$(( (10500 + POP3_CLIENTS - 1) / POP3_CLIENTS ))

start_dovecot() {
	DOVE_CONF=$DV/dovecot.conf
	sed -e "s|@RUN@|$DV|g" -e "s|@MAIL@|$BT/dove|g" -e "s|@PORT@|$P_DOVE|g" \
	    -e "s|@NPROC@|$NPROC|g" -e "s|@UID@|$MAIL_UID|g" -e "s|@GID@|$MAIL_GID|g" \
	    -e "s|@POP3_CLIENTS@|$POP3_CLIENTS|g" -e "s|@POP3_PROCS@|$POP3_PROCS|g" \
	    -e "s|@POP3_MIN@|$NPROC|g" \
	    bench/dovecot/dovecot.conf.in >"$DOVE_CONF"
	(
		ulimit -n "$(ulimit -Hn)"
		/usr/sbin/dovecot -c "$DOVE_CONF"
	) 2>>"$DV/start.err" || { cat "$DV/start.err" >&2; die "dovecot did not start"; }
	wait_port "$P_DOVE"
	DOVE_PID=$(cat "$DV/base/master.pid")
}

stop_dovecot() {
	/usr/sbin/dovecot -c "$DOVE_CONF" stop >/dev/null 2>&1 || true
	for _ in $(seq 100); do
		kill -0 "$DOVE_PID" 2>/dev/null || break
		sleep 0.1
	done
}

# A fresh server: nothing cached, no memory left over from earlier runs.
restart() {	# ours|dovecot
	if [ "$1" = ours ]; then
		stop_ours
		start_ours
	else
		stop_dovecot
		start_dovecot
	fi
}

# Drops Dovecot's index and uidlist of one user: its next login is a
# first login.
dovecot_forget() {
	rm -rf "$DV/index/$1" "$DV/control/$1"
}

start_plain() {	# PORT FILE [-r]
	"$PLAIN" -p "$@" 2>>"$BT/plain.err" &
	PLAIN_PIDS+=($!)
	wait_port "$1"
}

start_ours
start_dovecot
start_plain "$P_PLAIN1M" -f "$BT/msgs/m1mb"
start_plain "$P_PLAIN100M" -f "$BT/msgs/m100mb"
start_plain "$P_PLAIN1M_RW" -f "$BT/msgs/m1mb" -r
start_plain "$P_PLAIN100M_RW" -f "$BT/msgs/m100mb" -r
log "ours: pid $OURS_PID port $P_OURS; dovecot $(dovecot --version | cut -d' ' -f1): master $DOVE_PID port $P_DOVE"

# --- Running the load generator -------------------------------------------

RAW=$BT/raw.jsonl
: >"$RAW"

want() {	# SCENARIO: is it selected?
	[ -z "$ONLY" ] && return 0
	case " $ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# run CASE SERVER ROUND PORT loadgen-args...: one measurement, one line
# of $RAW.  A loadgen that fails records its stderr instead.
run() {
	local case=$1 server=$2 round=$3 port=$4 out rc
	shift 4
	out=$BT/lg.out
	rc=0
	"$LG" "$@" -p "$port" >"$out" 2>"$BT/lg.err" || rc=$?
	if [ $rc -ne 0 ] || [ ! -s "$out" ]; then
		log "$case/$server/$round: loadgen failed: $(tail -n 3 "$BT/lg.err" | tr '\n' ' ')"
		python3 -c 'import json,sys; print(json.dumps({"case":sys.argv[1],"server":sys.argv[2],"round":int(sys.argv[3]),"error":sys.argv[4]}))' \
			"$case" "$server" "$round" "$(tail -n 3 "$BT/lg.err")" >>"$RAW"
		return 0
	fi
	printf '{"case": "%s", "server": "%s", "round": %d, "result": %s}\n' \
		"$case" "$server" "$round" "$(cat "$out")" >>"$RAW"
	python3 - "$out" "$case" "$server" "$round" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
keys = ["sessions_per_s", "MB_per_s", "sessions_ok", "pss_per_session_kib",
        "storm_s", "big_MB_per_s", "timed_out"]
bits = ["%s=%s" % (k, r[k]) for k in keys if k in r]
for k in ("session", "noop", "total"):
    if k in r:
        bits.append("%s p50=%.2fms p99=%.2fms" % (k, r[k]["p50_ms"], r[k]["p99_ms"]))
errs = r.get("protocol_errors", 0) + r.get("connect_errors", 0) + r.get("closed_early", 0)
if errs or r.get("last_error"):
    bits.append("errors=%d (%s)" % (errs, r.get("last_error")))
print("bench: %-14s %-8s round %s: %s" % (sys.argv[2], sys.argv[3], sys.argv[4], ", ".join(bits)))
EOF
}

pid_of() { [ "$1" = ours ] && echo "$OURS_PID" || echo "$DOVE_PID"; }
port_of() { [ "$1" = ours ] && echo "$P_OURS" || echo "$P_DOVE"; }

# Each scenario: for round in 1..R: ours, then dovecot (A B A B ...).
both() {	# CASE loadgen-args... (run against each server, once each)
	local case=$1 r=$2 s
	shift 2
	for s in ours dovecot; do
		run "$case" "$s" "$r" "$(port_of "$s")" "$@"
		wait_drain "$(port_of "$s")"
	done
}

if want sessions; then
	for ((r = 1; r <= ROUNDS; r++)); do
		both sessions-1 "$r" sessions -c 1 -d "$DUR" -w 0.5 -U 'u%d' -W 'pw%d'
		both sessions-16 "$r" sessions -c 16 -d "$DUR" -w 0.5 -U 'u%d' -W 'pw%d'
	done
fi

if want storm; then
	for ((r = 1; r <= ROUNDS; r++)); do
		# First logins: 500 users that have not logged in during this
		# run (a new set each round; the probe is the 501st).  Then
		# the same 500 again, storm after storm until 1 s of storms
		# was sampled (at most 40): repeat logins.
		o=$((1000 + (501 * (r - 1)) % 8500))
		both storm-first "$r" storm -c 500 -o "$o" -U 'u%d' -W 'pw%d' -i 1 -t 120
		both storm-again "$r" storm -c 500 -k 40 -d 1 -o "$o" -U 'u%d' -W 'pw%d' -i 1 -t 120
	done
fi

if want retr; then
	for ((r = 1; r <= ROUNDS; r++)); do
		# The physical limit: the same file, no protocol, by sendfile
		# and by read/write; the report takes the faster per round.
		both retr-1mb "$r" retr -c 4 -U 'r%d' -W 'pw-r%d' -m 1 -e "$W1M" -d "$DUR"
		run retr-1mb plain-sendfile "$r" "$P_PLAIN1M" plain -c 4 -e "$F1M" -d "$DUR"
		run retr-1mb plain-rw "$r" "$P_PLAIN1M_RW" plain -c 4 -e "$F1M" -d "$DUR"
		both retr-100mb "$r" retr -c 1 -U huge -W pw-huge -m 1 -e "$W100M" -d "$DUR"
		run retr-100mb plain-sendfile "$r" "$P_PLAIN100M" plain -c 1 -e "$F100M" -d "$DUR"
		run retr-100mb plain-rw "$r" "$P_PLAIN100M_RW" plain -c 1 -e "$F100M" -d "$DUR"
	done
fi

if want hold; then
	for ((r = 1; r <= ROUNDS; r++)); do
		for n in 1000 10000; do
			for s in ours dovecot; do
				# Memory is measured against a fresh server.
				restart "$s"
				run "hold-$n" "$s" "$r" "$(port_of "$s")" hold -c "$n" \
					-U 'u%d' -W 'pw%d' -r 256 -n 16 -s 2 \
					-M "$(pid_of "$s")" -t 240
				wait_drain "$(port_of "$s")"
			done
		done
	done
fi

if want fair; then
	for ((r = 1; r <= ROUNDS; r++)); do
		# 8 clients send a NOOP every 10 ms while giant RETRs 1 GiB:
		# slowly (1 MiB/s) or as fast as it can.
		for mode in slow fast; do
			for s in ours dovecot; do
				if [ "$mode" = slow ]; then extra=(-S -R 1024); else extra=(); fi
				run "fair-$mode" "$s" "$r" "$(port_of "$s")" fair -c 8 \
					-U 'u%d' -W 'pw%d' -b giant -P pw-giant -m 1 \
					-e "$W1G" -i 10 -d "$DUR" -M "$(pid_of "$s")" "${extra[@]}"
				wait_drain "$(port_of "$s")"
			done
		done
	done
fi

if want list; then
	# One unmeasured pass on each server first: the first round must
	# not also pay for whatever the scenarios before left the kernel
	# doing (seen: ours, always first, 3x slower in round 1 only).
	"$LG" list -p "$P_OURS" -U many -W pw-many -n 1 >/dev/null 2>&1 || true
	"$LG" list -p "$P_DOVE" -U many -W pw-many -n 1 >/dev/null 2>&1 || true
	for ((r = 1; r <= ROUNDS; r++)); do
		# First login: ours freshly restarted, Dovecot without its
		# index and uidlist for "many"; then three more logins.
		stop_ours
		start_ours
		run list-first ours "$r" "$P_OURS" list -U many -W pw-many -n 1 -E 10000
		run list-again ours "$r" "$P_OURS" list -U many -W pw-many -n 3 -E 10000
		dovecot_forget many
		run list-first dovecot "$r" "$P_DOVE" list -U many -W pw-many -n 1 -E 10000
		run list-again dovecot "$r" "$P_DOVE" list -U many -W pw-many -n 3 -E 10000
	done
fi

# --- Report -----------------------------------------------------------------

T_END=$(date +%s)
UPDATE_DOCS=1
{ [ "$QUICK" = 1 ] || [ -n "$ONLY" ]; } && UPDATE_DOCS=0
python3 bench/report.py --raw "$RAW" --json bench/results.json \
	--rounds "$ROUNDS" --quick "$QUICK" --wall "$((T_END - T_START))" \
	--dovecot-version "$(dovecot --version | cut -d' ' -f1)" \
	--pop3-clients "$POP3_CLIENTS" --load-before "$LOAD_BEFORE" \
	$( [ "$UPDATE_DOCS" = 1 ] && echo --docs docs/performance.md )
