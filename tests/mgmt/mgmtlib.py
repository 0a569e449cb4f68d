"""Helpers of the MGMT integration tests (docs: the spec
shared/specs/mgmt-protocol.md).  Built on the shared harness
tests/lib/pop3test.py, whose API is not changed here: a Server subclass
with an administrator, a raw MGMT client, a runner for bin/admin_monitor,
the users file reader and a few polling helpers.

Python standard library only.
"""
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from pop3test import (Client, Server, SERVER_BIN,  # noqa: E402,F401
                      SharedServerTest, free_port, fixture_messages, stuff,
                      unstuff, wire_form)
import mgmtclient  # noqa: E402
from mgmtclient import GREETING, MULTI, parse_figures  # noqa: E402,F401

# admin_monitor of the same build as the server under test (a sanitizer
# build uses its own).
MONITOR_BIN = os.path.join(os.path.dirname(os.path.abspath(SERVER_BIN)),
                           "admin_monitor")

ADMIN_PW = "Adm1n-Pw.7731"
USERS = {"admin": ADMIN_PW, "alice": "secret", "bob": "hunter2"}

STATUS_KEYS = ["BYTES SENT", "BYTES RECEIVED", "LIVE CONNECTIONS",
               "HISTORIC CONNECTIONS", "TOTAL USERS", "MAX USERS",
               "MAX CONNECTIONS", "IDLE TIMEOUT", "UPTIME"]

# Commands valid in ACTIVE_MGMT (spec table).
ACTIVE_COMMANDS = ["NOOP", "CAPA", "QUIT", "HISTORIC_CONNEC", "LIVE_CONNEC",
                   "BYTES_TRANS", "USERS", "STATUS", "MAX_USERS",
                   "MAX_CONNEC", "IDLE_TIMEOUT", "TIMEOUT", "DELETE_USER",
                   "ADD_USER", "RESET_USER_PASSWORD", "CHANGE_PASSWORD"]

# How long a failed PASS must at least be held back (spec: about 1 s).
FAIL_DELAY_MIN = 0.8


class MgmtServer(Server):
    """A pop3server with a known administrator password."""

    def __init__(self, users=None, **kw):
        super().__init__(users=dict(USERS if users is None else users),
                         **kw)

    def mgmt(self, login=True, timeout=10.0, host="127.0.0.1"):
        m = Mgmt(self.mgmt_port, host=host, timeout=timeout)
        if login:
            m.login(self.users.get("admin", ADMIN_PW))
        return m

    def monitor(self, *args, **kw):
        kw.setdefault("port", self.mgmt_port)
        kw.setdefault("password", self.users.get("admin", ADMIN_PW))
        return monitor(*args, **kw)

    def pop3(self, user=None, password=None, timeout=10.0):
        """A POP3 client, logged in when user is given."""
        c = self.client(timeout=timeout)
        if user is None:
            c.greeting()
        else:
            c.login(user, password if password is not None
                    else self.users[user])
        return c

    def restart(self, sig=None):
        """Stops (SIGTERM, or sig) and starts again on the same ports, mail
        root and users file."""
        if sig is None:
            self.stop()
        else:
            self.stop(sig=sig)
        self.start()


class DefaultMgmtAddrServer(MgmtServer):
    """A server started without -L: MGMT on its default addresses."""

    def command(self):
        cmd = super().command()
        for i in range(len(cmd) - 1):
            if cmd[i] == "-L" and cmd[i + 1] == "127.0.0.1":
                return cmd[:i] + cmd[i + 2:]
        raise AssertionError("no -L 127.0.0.1 in %r" % cmd)


class Mgmt(mgmtclient.Mgmt):
    ADMIN_PW = ADMIN_PW


def wait_figure(m, key, want, timeout=5.0):
    """Polls STATUS until key == want; returns the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        v = m.status()[key]
        if v == want or time.monotonic() >= deadline:
            return v
        time.sleep(0.02)


class Monitor:
    """The outcome of one admin_monitor run."""

    def __init__(self, argv, proc, elapsed):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("latin-1")
        self.stderr = proc.stderr.decode("latin-1")
        self.lines = self.stdout.splitlines()
        self.elapsed = elapsed

    def __repr__(self):
        return "admin_monitor %r: rc=%r\nstdout=%r\nstderr=%r" % (
            self.argv[1:], self.rc, self.stdout, self.stderr)


def monitor(*args, port, host="127.0.0.1", user="admin", password=ADMIN_PW,
            version="1.0", options=(), stdin=None, limit=30.0):
    """Runs admin_monitor --host H --port P [options] version user password
    args...; stdin is bytes fed to its standard input (else /dev/null)."""
    argv = [MONITOR_BIN, "--host", host, "--port", str(port)] + \
        list(options) + [version, user, password] + list(args)
    return run_monitor(argv, stdin=stdin, limit=limit)


def run_monitor(argv, stdin=None, limit=30.0):
    t0 = time.monotonic()
    kw = {"input": stdin} if stdin is not None else \
        {"stdin": subprocess.DEVNULL}
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=limit, **kw)
    return Monitor(argv, p, time.monotonic() - t0)


# The users/settings file.

def users_file_text(srv):
    with open(srv.users_file, "rb") as f:
        return f.read().decode("latin-1")


def users_file_accounts(srv):
    """name -> stored hash, for every 'name:hash' line."""
    out = {}
    for ln in users_file_text(srv).splitlines():
        if ln.startswith("#") or ":" not in ln:
            continue
        name, h = ln.split(":", 1)
        out[name] = h
    return out


def users_file_mode(srv):
    return stat.S_IMODE(os.stat(srv.users_file).st_mode)


SHA512_HASH = re.compile(r"\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$"
                         r"[./0-9A-Za-z]{86}")


def crypt_matches(password, stored):
    """True/False when crypt(3) is available to check a stored hash, None
    when it is not (Python without the crypt module)."""
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt
    except ImportError:
        return None
    return crypt.crypt(password, stored) == stored


def tree(path):
    """Every path under path (relative), for before/after comparisons."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, n), path))
    return out


# POP3 side.

def pop3_login_result(srv, user, password, timeout=10.0):
    """Tries a POP3 login; returns the PASS reply (str, no CRLF)."""
    c = srv.client(timeout=timeout)
    try:
        c.greeting()
        r = c.cmd("USER " + user)
        if not r.startswith("+OK"):
            return r.strip()
        return c.cmd("PASS " + password).strip()
    finally:
        c.close()


def make_maildrop(srv, user):
    d = os.path.join(srv.maildir, user)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    return d


def write_big_message(path, target):
    """A message of about `target` octets (LF line ends, many lines that
    start with '.'); returns its wire form."""
    lines = []
    for i in range(1999):
        if i % 61 == 0:
            lines.append(b"." * (i % 4 + 1))
        elif i % 17 == 0:
            lines.append(b".dotted %d " % i + b"y" * (i % 40))
        else:
            lines.append(b"line %d " % i + b"0123456789" * (i % 8))
    block = b"\n".join(lines) + b"\n"
    parts = [b"From: big@example.org\nTo: big@example.org\nSubject: big\n\n"]
    n = len(parts[0])
    while n < target:
        parts.append(block)
        n += len(block)
    data = b"".join(parts)
    with open(path, "wb") as f:
        f.write(data)
    return wire_form(data)


# Fake peers for admin_monitor.

class SilentListener:
    """A socket that listens (the kernel completes handshakes) and never
    writes a byte."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class ScriptedPeer:
    """Accepts one connection, sends `greeting`, then answers each line
    it reads with the next item of `replies`: bytes to send, or a
    function of the socket that does its own sending.  Closes when the
    replies run out or the client leaves."""

    def __init__(self, greeting, replies):
        self.greeting = greeting
        self.replies = list(replies)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(15)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        with c:
            try:
                c.sendall(self.greeting)
                f = c.makefile("rb")
                for reply in self.replies:
                    if not f.readline():
                        return
                    if callable(reply):
                        reply(c)
                    else:
                        c.sendall(reply)
            except OSError:
                return

    def close(self):
        self.sock.close()
        self.thread.join(25)


# Addresses.

def non_loopback_ipv4():
    """A non-loopback IPv4 address of this machine, or None."""
    cands = []
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True,
                             text=True, timeout=5).stdout
        cands += re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.254", 9))    # no packet is sent
            cands.append(s.getsockname()[0])
    except OSError:
        pass
    for a in cands:
        if not a.startswith("127.") and a != "0.0.0.0":
            return a
    return None


def listening_addresses(port):
    """The local addresses of the TCP sockets listening on port, from
    /proc/net/tcp and /proc/net/tcp6, as text."""
    out = []
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(path) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            addr, p = f[1].split(":")
            if int(p, 16) != port or f[3] != "0A":      # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr)
            if v6:
                # four host-order 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                out.append(socket.inet_ntop(socket.AF_INET6, raw))
            else:
                out.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return out


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def connect_result(host, port, timeout=3.0):
    """'open' when a TCP connection to host:port succeeds, else the
    error's name."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            return "open"
        except OSError as e:
            return type(e).__name__


def recv_within(client, seconds):
    """What the peer of a Client sends within `seconds`: None when nothing
    came, b'' when it closed, else the bytes (kept in the client's buffer
    too, so later reads still see them).  The socket timeout is restored.
    """
    if client.buf:
        return client.buf
    old = client.sock.gettimeout()
    client.sock.settimeout(seconds)
    try:
        data = client.sock.recv(65536)
    except (socket.timeout, TimeoutError):
        return None
    finally:
        client.sock.settimeout(old)
    client.buf += data
    return data
