#!/usr/bin/env bash
# bench/smoke.sh: keeps the benchmark tools from rotting, for CI.  Builds
# build/bench/loadgen and plainserver, starts bin/pop3server on a free
# loopback port with a few small maildrops, and runs every loadgen
# scenario briefly (about 10 seconds in all), checking that each one
# reports what it should.  No Dovecot, no numbers judged: that is
# `make bench` (bench/run.sh).  Last line: "bench-smoke: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

pass=0
fail=0
ok() { pass=$((pass + 1)); printf 'bench-smoke: ok   %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'bench-smoke: FAIL %s\n' "$1"; }

finish() {
	[ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null
	[ -n "${PLN:-}" ] && kill "$PLN" 2>/dev/null
	wait 2>/dev/null
	[ -n "${T:-}" ] && rm -rf "$T"
	echo "bench-smoke: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}

if make -s all bench-tools >/dev/null; then
	ok "make bench-tools"
else
	bad "make bench-tools"
	finish
	exit 1
fi
LG=build/bench/loadgen

T=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Maildrops: u0..u103 with one small message, big with a 2 MiB one,
# many with 200.  Every file ends with LF; some lines start with a dot.
python3 - "$T" <<'EOF'
import os, sys
top = sys.argv[1]
def md(user):
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(top, "mail", user, s), exist_ok=True)
    return os.path.join(top, "mail", user, "cur")
small = b"Subject: smoke\n\nhello\n.dot line\nbye\n"
for i in range(104):
    open(os.path.join(md("u%d" % i), "1.smoke:2,"), "wb").write(small)
line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n"
body = b"Subject: big\n\n" + (line * 28000) + b".stuffed\n"
open(os.path.join(md("big"), "1.big:2,"), "wb").write(body)
open(os.path.join(top, "big.wire"), "w").write(str(len(body) + body.count(b"\n")))
open(os.path.join(top, "big.file"), "w").write(str(len(body)))
for i in range(200):
    open(os.path.join(md("many"), "%d.m:2," % (i + 1)), "wb").write(small)
EOF

P=$(port)
PM=$(port)
args=()
for i in $(seq 0 103); do args+=(-u "u$i:pw$i"); done
bin/pop3server -p "$P" -l 127.0.0.1 -P "$PM" -L 127.0.0.1 -d "$T/mail" \
	-U "$T/users" -T 600 --log "$T/access.log" "${args[@]}" \
	-u big:pw-big -u many:pw-many 2>"$T/server.err" &
SRV=$!
if wait_port "$P"; then ok "pop3server started"; else bad "pop3server started"; cat "$T/server.err"; finish; exit 1; fi

# check NAME PYTHON-EXPRESSION loadgen-args...: runs loadgen, evaluates
# the expression on its JSON result r.
check() {
	local name=$1 expr=$2 out
	shift 2
	out=$("$LG" "$@" -t 20 2>"$T/lg.err")
	if python3 -c '
import json, sys
r = json.loads(sys.argv[1])
errs = r.get("protocol_errors", 0) + r.get("connect_errors", 0) + r.get("closed_early", 0)
ok = errs == 0 and not r.get("timed_out") and eval(sys.argv[2])
sys.exit(0 if ok else 1)' "$out" "$expr" 2>/dev/null; then
		ok "$name"
	else
		bad "$name: $out $(tail -n 2 "$T/lg.err")"
	fi
}

WIRE=$(cat "$T/big.wire")
FILE=$(cat "$T/big.file")
check "sessions, 4 clients" 'r["sessions"] > 10' \
	sessions -p "$P" -c 4 -d 2 -w 0.2
check "hold 100 + PSS" 'r["sessions_ok"] == 100 and r["noop_ok"] == 100 and r["procs_after"] == 1' \
	hold -p "$P" -c 100 -s 0.2 -M "$SRV"
check "login-storm 50" 'r["logins_ok"] == 50 and r["noop"]["n"] > 0' \
	storm -p "$P" -c 50
check "retr, byte count verified" 'r["retrievals"] >= 1 and r["bad_counts"] == 0' \
	retr -p "$P" -c 1 -U big -W pw-big -m 1 -e "$WIRE" -d 0.5
check "fair, fast reader" 'r["noop"]["n"] > 0 and r["big_bad_counts"] == 0' \
	fair -p "$P" -c 2 -b big -P pw-big -m 1 -e "$WIRE" -i 10 -d 0.5
check "fair, slow reader" 'r["noop"]["n"] > 0 and r["big_bytes"] > 0' \
	fair -p "$P" -c 2 -b big -P pw-big -m 1 -S -R 256 -d 0.5
check "list 200" 'r["messages"] == 200 and r["bad"] == 0' \
	list -p "$P" -U many -W pw-many -n 2 -E 200

PP=$(port)
build/bench/plainserver -p "$PP" -f "$T/mail/big/cur/1.big:2," 2>/dev/null &
PLN=$!
if wait_port "$PP"; then
	check "plainserver + loadgen plain" 'r["retrievals"] >= 1 and r["bad_counts"] == 0' \
		plain -p "$PP" -c 1 -e "$FILE" -d 0.5
else
	bad "plainserver started"
fi

finish
