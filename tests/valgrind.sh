#!/usr/bin/env bash
# `make valgrind`: a representative session set (login, every
# TRANSACTION command, RETR of dot-stuffed and CRLF messages, DELE+QUIT,
# pipelining, a failed login, MGMT commands, SIGTERM) against the server
# running under valgrind memcheck.  Fails on any memcheck error or any
# definitely lost byte.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cp -R tests/fixtures/mail "$tmp/mail"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --log-file="$tmp/vg.log" \
	bin/pop3server -p "$port" -l 127.0.0.1 -P "$mport" -L 127.0.0.1 \
	-d "$tmp/mail" -U "$tmp/users" -u alice:secret -u admin:adminpw \
	-T 30 2>"$tmp/server.log" &
pid=$!
python3 - "$port" "$mport" <<'PY'
import socket, sys, time
port, mport = int(sys.argv[1]), int(sys.argv[2])
deadline = time.time() + 60
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("server did not start")
        time.sleep(0.2)

def talk(p, data, wait=15):
    s = socket.create_connection(("127.0.0.1", p), timeout=wait)
    s.sendall(data)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out

cmds = (b"CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\n"
        b"LIST 1\r\nUIDL 2\r\nRETR 1\r\nRETR 2\r\nRETR 3\r\nTOP 1 0\r\n"
        b"TOP 2 99999999\r\nDELE 1\r\nRSET\r\nDELE 2\r\nNOOP\r\nRETR 99\r\n"
        b"BOGUS\r\nQUIT\r\n")
out = talk(port, cmds)
assert out.count(b"+OK") >= 18, out[-300:]
out = talk(port, b"USER alice\r\nPASS wrong\r\nQUIT\r\n")
assert b"-ERR [AUTH]" in out, out
out = talk(port, b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTAT\r\nQUIT\r\n")
assert out.count(b"+OK") >= 3, out
out = talk(mport, b"USER admin\r\nPASS adminpw\r\nSTATUS\r\nUSERS\r\n"
           b"ADD_USER bob pw\r\nRESET_USER_PASSWORD bob\r\n"
           b"DELETE_USER bob\r\nCAPA\r\nQUIT\r\n")
assert out.count(b"+OK") >= 9, out
print("valgrind session set: ok")
PY
rc=$?
kill -TERM "$pid"
wait "$pid"
vg=$?
cat "$tmp/vg.log"
if [ "$rc" -ne 0 ] || [ "$vg" -ne 0 ] || [ -s "$tmp/vg.log" ]; then
	echo "valgrind: FAILED (client $rc, server exit $vg)"
	exit 1
fi
echo "valgrind: clean"
