"""Helpers of the message filter integration tests (RETR through
`/bin/sh -c COMMAND`, spec shared/specs/pop3-server.md "Message
filters").  Built on the shared harness tests/lib/pop3test.py, whose API
is not changed here: a Server subclass with an administrator and a
filter, a MGMT client, /proc inspection (the server's children, process
groups, descriptors, memory), big message generation and readers that
tell a complete multi-line reply from a connection closed mid-message.

Python standard library only.
"""
import os
import re
import signal
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from pop3test import (Client, Server, fixture_messages,  # noqa: E402,F401
                      stuff, top_form, unstuff, wire_form)
import mgmtclient  # noqa: E402

ADMIN_PW = "Adm1n-Pw.7731"
USERS = {"admin": ADMIN_PW, "alice": "secret", "bob": "hunter2"}

OK_FILTERED = "+OK filtered message follows\r\n"
ERR_FILTER = "-ERR [SYS/TEMP] filter failed\r\n"

# ASCII-only upper-casing whatever the locale.
UPPER = "LC_ALL=C tr a-z A-Z"

ALICE = fixture_messages("alice")       # (uid, raw, name) in order
BOB = fixture_messages("bob")


def ascii_upper(data):
    return data.upper()        # bytes.upper() touches a-z only


def expected_body(filter_output):
    """The multi-line body (stuffed, without the terminator) a client must
    get for what the filter wrote."""
    return stuff(wire_form(filter_output))


# --------------------------------------------------------------------------
# /proc

def proc_stat(pid):
    """(state, ppid, pgrp, comm) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("latin-1")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), comm


def all_processes():
    """{pid: (state, ppid, pgrp, comm)} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def children_of(pid):
    """{child pid: (state, ppid, pgrp, comm)}, zombies included."""
    return {p: st for p, st in all_processes().items() if st[1] == pid}


def group_members(pgrp, live_only=True):
    """Processes of a process group (zombies left out when live_only:
    a grandchild orphaned to a non-reaping init is not the server's)."""
    return {p: st for p, st in all_processes().items()
            if st[2] == pgrp and not (live_only and st[0] == "Z")}


def _become_subreaper():
    """Makes this process the reaper of orphaned descendants (Linux
    PR_SET_CHILD_SUBREAPER): a filter's grandchild killed with its process
    group is then reaped here, not left a zombie under an init that may
    not reap.  Failing that, nothing changes."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


_become_subreaper()


def reap_orphans():
    """Reaps zombie orphans adopted by this process (never a server: its
    Popen owns that status)."""
    me = os.getpid()
    for pid, st in children_of(me).items():
        if st[0] == "Z" and st[3] != "pop3server":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_targets(pid):
    out = []
    d = "/proc/%d/fd" % pid
    for n in sorted(os.listdir(d), key=int):
        try:
            out.append("%s -> %s" % (n, os.readlink(os.path.join(d, n))))
        except OSError:
            pass
    return out


def wait_for(pred, timeout, step=0.01):
    """Polls pred() until it returns a true value (returned) or timeout
    (returns the last, false, value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


# --------------------------------------------------------------------------
# Servers and clients

class Mgmt(mgmtclient.Mgmt):
    """The MGMT client, with FILTER."""

    ADMIN_PW = ADMIN_PW

    def filter(self, arg=None):
        """FILTER [arg]: returns the reply as a list of lines (status,
        body lines, terminator), read up to the '.' when +OK."""
        first = self.ask("FILTER" if arg is None else "FILTER " + arg)
        out = [first]
        if first.startswith("+OK"):
            while True:
                ln = self.text()
                out.append(ln)
                if ln == ".":
                    break
        return out

    def set_filter(self, command):
        r = self.filter(command)
        assert r == ["+OK FILTER", "FILTER: " + command, "."], r


class FilterServer(Server):
    """A pop3server with an administrator, an optional -t filter and
    --filter-timeout.  Records the descriptor count once the readiness
    probe's session is gone (self.base_fds)."""

    def __init__(self, filter=None, timeout=None, users=None, args=(), **kw):
        a = list(args)
        if filter is not None:
            a += ["-t", filter]
        if timeout is not None:
            a += ["--filter-timeout", str(timeout)]
        super().__init__(users=dict(USERS if users is None else users),
                         args=a, **kw)
        self.base_fds = None

    def start(self):
        offset = os.path.getsize(self.log_file) \
            if os.path.exists(self.log_file) else 0
        super().start()
        # wait_port() opened (and closed) one POP3 session: wait until
        # the server logged its end, then take the descriptor baseline.
        rx = re.compile(r"pop3\[\d+\] \S+ user=- logout")
        if not wait_for(lambda: rx.search(self.log_text()[offset:]), 5.0):
            raise RuntimeError("readiness probe session never ended:\n"
                               + self.log_text())
        self.base_fds = fd_count(self.proc.pid)

    def stop(self, *a, **kw):
        """Stops the server; filter process groups it leaves behind (a
        server bug) are killed by their ids, so no test leaves a process
        running."""
        groups = []
        if self.proc is not None and self.proc.poll() is None:
            groups = [p for p, st in self.children().items() if st[0] != "Z"]
        rc = super().stop(*a, **kw)
        for g in groups:
            if group_members(g):
                try:
                    os.killpg(g, signal.SIGKILL)
                except OSError:
                    pass
        reap_orphans()
        return rc

    def pop3(self, user="alice", timeout=15.0):
        c = self.client(timeout=timeout)
        c.login(user, self.users[user])
        return c

    def mgmt(self, timeout=10.0):
        m = Mgmt(self.mgmt_port, timeout=timeout)
        m.login(self.users.get("admin", ADMIN_PW))
        return m

    def fds(self):
        return fd_count(self.proc.pid)

    def children(self):
        return children_of(self.proc.pid)

    def session_id(self, client):
        """The server's id of a client's session (from its connect log
        line, matched by the client's port)."""
        port = client.sock.getsockname()[1]
        m = self.wait_log(r"pop3\[(\d+)\] 127\.0\.0\.1:%d user=- connect" % port)
        assert m, "no connect log line for port %d" % port
        return int(m.group(1))

    def add_message(self, user, name, data, mtime):
        """Writes a message into user's cur/ (before that user logs in);
        mtime decides its place in the order."""
        d = os.path.join(self.maildir, user, "cur")
        os.makedirs(d, exist_ok=True)
        for sub in ("new", "tmp"):
            os.makedirs(os.path.join(self.maildir, user, sub), exist_ok=True)
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (mtime, mtime))
        return p


class FilterTest(unittest.TestCase):
    """Base class: every test ends with the server's descriptor count back
    at its baseline and no child left (zombie or not)."""

    def tearDown(self):
        reap_orphans()

    def assert_no_children(self, srv, timeout=3.0):
        kids = wait_for(lambda: not srv.children(), timeout)
        self.assertTrue(kids, "server children left after %.1fs: %r"
                        % (timeout, srv.children()))

    def assert_clean(self, srv, timeout=3.0):
        """No child of the server (a zombie counts) and its descriptor
        count back at the baseline (every client must be closed)."""
        self.assert_no_children(srv, timeout)
        ok = wait_for(lambda: srv.fds() == srv.base_fds, timeout)
        self.assertTrue(ok, "server descriptors: %d, baseline %d:\n%s"
                        % (srv.fds(), srv.base_fds,
                           "\n".join(fd_targets(srv.proc.pid))))

    def wait_child(self, srv, min_group=1, timeout=5.0):
        """Waits until the server has a filter child whose process group
        has at least min_group live members; returns its pid."""
        def find():
            for pid, st in srv.children().items():
                if st[0] != "Z" and len(group_members(pid)) >= min_group:
                    return pid
            return None
        pid = wait_for(find, timeout)
        self.assertTrue(pid, "no filter child appeared: %r"
                        % srv.children())
        return pid


# --------------------------------------------------------------------------
# Reading replies

def read_multiline_or_close(c, timeout=15.0):
    """Reads the body of a multi-line reply already announced by +OK.
    Returns (body, complete): complete is True when the terminating
    '.CRLF' arrived (body excludes it), False when the server closed the
    connection first (body is everything received)."""
    c.sock.settimeout(timeout)
    data = bytearray(c.buf)
    c.buf = b""
    if data.startswith(b".\r\n"):
        c.buf = bytes(data[3:])
        return b"", True
    start = 0
    while True:
        end = data.find(b"\r\n.\r\n", start)
        if end >= 0:
            c.buf = bytes(data[end + 5:])
            return bytes(data[:end + 2]), True
        start = max(0, len(data) - 4)
        try:
            chunk = c.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return bytes(data), False
        data += chunk


def line_or_eof(c, timeout=15.0):
    """The next reply line (str), or None when the server closes first."""
    c.sock.settimeout(timeout)
    try:
        return c.line().decode("latin-1")
    except (EOFError, ConnectionResetError):
        return None


class RssSampler:
    """Samples a process's VmRSS in a thread; .peak (kB) while running."""

    def __init__(self, srv, period=0.02):
        self.srv = srv
        self.period = period
        self.peak = srv.rss_kb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.srv.rss_kb())
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.period)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        return False


def big_message(target):
    """About `target` octets, LF line ends, many lines starting with '.'
    (lone dots too), a block length that is not a power of two, and no
    final LF."""
    lines = []
    for i in range(2999):
        if i % 97 == 0:
            line = b"." * (i % 5 + 1)
        elif i % 13 == 0:
            line = b".dot-started line %d " % i + b"x" * (i % 50)
        else:
            line = b"line %d " % i + b"abcdefghij" * (i % 9)
        lines.append(line)
    block = b"\n".join(lines) + b"\n"
    head = b"From: big@example.org\nTo: alice@example.org\nSubject: big\n\n"
    reps = max(1, (target - len(head)) // len(block) + 1)
    return head + block * reps + b".\nlast line"


def timed(fn, *a):
    t0 = time.monotonic()
    r = fn(*a)
    return r, time.monotonic() - t0


def recv_some(sock, n, timeout=10.0):
    """Receives exactly n bytes (or less at EOF)."""
    sock.settimeout(timeout)
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def small_rcvbuf_client(srv, size=16384, timeout=15.0):
    """A POP3 client whose receive buffer is small (set before connect),
    so that a client that does not read exerts back-pressure early."""
    c = Client.__new__(Client)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    s.settimeout(timeout)
    s.connect((srv.host, srv.port))
    c.sock = s
    c.buf = b""
    c.sent = 0
    c.received = 0
    return c
