"""Helpers of the hardening suite (tests/hardening/), built on the shared
harness tests/lib/pop3test.py, whose API is not changed here.

What is here: a TestCase base with a wall-clock watchdog; a raw MGMT
client; a Server subclass whose users file lives on a small tmpfs this
suite mounts (to make ENOSPC, inode exhaustion and a read-only file
system, which root cannot bypass); descriptor, CPU and memory probes of
the server process; a users-file parser; maildir planting, delivery and
snapshot helpers; polling helpers.  Every process and mount this module
creates is undone by the object that created it.

Python standard library only.
"""
import base64
import hashlib
import os
import re
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from pop3test import (Client, Server, SERVER_BIN, FIXTURES,  # noqa: E402,F401
                      fixture_messages, free_port, stuff, unstuff,
                      wire_form)
import mgmtclient  # noqa: E402

ADMIN_PW = "Adm1n-Hard.9041"
USERS = {"admin": ADMIN_PW, "alice": "secret", "bob": "hunter2"}
AUTH_FAILED = "-ERR [AUTH] invalid user name or password"
CANNOT_SAVE = "-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE"


class Watchdog(Exception):
    """Raised in the test by the per-test alarm."""


class HardTest(unittest.TestCase):
    """A test with a wall-clock limit: SIGALRM after LIMIT seconds raises
    Watchdog in the test, so a hung server or client is a failure and the
    context managers still stop every process and unmount every tmpfs."""

    LIMIT = 90

    def setUp(self):
        def fire(signum, frame):
            raise Watchdog("test exceeded its %d s limit" % self.LIMIT)
        old = signal.signal(signal.SIGALRM, fire)
        signal.setitimer(signal.ITIMER_REAL, self.LIMIT)

        def disarm():
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        self.addCleanup(disarm)


def b64(data):
    return base64.b64encode(data).decode()


def raise_own_nofile(need):
    """Raises this process's soft RLIMIT_NOFILE to the hard limit and
    fails (never skips) when even that is below `need`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        raise AssertionError(
            "the hard descriptor limit of the test process is %d; this "
            "test needs %d (raise `ulimit -Hn`)" % (hard, need))
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def nofile_limit(n):
    """A preexec_fn that sets the server's RLIMIT_NOFILE to n."""
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return apply


def wait_until(pred, timeout=5.0, step=0.02):
    """Polls pred() until true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


# --- the server process -------------------------------------------------

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_ns(pid):
    """CPU time the process has used, in nanoseconds: /proc/PID/schedstat
    when the kernel has it (ns precision), else utime+stime (ticks)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks * 1000000000 // os.sysconf("SC_CLK_TCK")


def mem_kb(pid):
    """(VmRSS, VmHWM) of the process in kB."""
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1))
    return rss, hwm


def asan_env():
    """The environment for memory measurements: under ASan, freed blocks
    sit in a quarantine that counts in RSS; turn it off."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [
        env.get("ASAN_OPTIONS"), "quarantine_size_mb=0",
        "thread_local_quarantine_size_kb=0"]))
    return env


# --- MGMT ---------------------------------------------------------------

class Mgmt(mgmtclient.Mgmt):
    ADMIN_PW = ADMIN_PW


def mgmt(srv, login=True, password=None, timeout=10.0):
    m = Mgmt(srv.mgmt_port, timeout=timeout)
    if login:
        m.login(password if password is not None
                else srv.users.get("admin", ADMIN_PW))
    return m


# --- POP3 ---------------------------------------------------------------

def pop3_pass_reply(srv, user, password, timeout=10.0):
    """Tries USER/PASS on a new connection; returns the PASS reply (str
    without CRLF).  A successful login is ended with QUIT (nothing is
    marked, so nothing is deleted)."""
    c = srv.client(timeout=timeout)
    try:
        c.greeting()
        c.cmd("USER " + user)
        r = c.cmd("PASS " + password).strip()
        if r.startswith("+OK"):
            c.cmd("QUIT")
        return r
    finally:
        c.close()


def read_until_close(client, limit_s, cap=1 << 30, total_s=None):
    """Reads a Client's socket until the peer closes (returns (data,
    True)) or nothing arrives for limit_s seconds, or total_s seconds
    have passed (returns (data, False)).  Bytes already buffered in the
    client are included."""
    data = bytearray(client.buf)
    client.buf = b""
    end = None if total_s is None else time.monotonic() + total_s
    client.sock.settimeout(limit_s)
    try:
        while len(data) < cap:
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    return bytes(data), False
                client.sock.settimeout(min(limit_s, left))
            chunk = client.sock.recv(1 << 20)
            if not chunk:
                return bytes(data), True
            data += chunk
    except (socket.timeout, TimeoutError):
        return bytes(data), False
    except ConnectionResetError:
        return bytes(data), True
    return bytes(data), False


# --- servers ------------------------------------------------------------

def mount_tmpfs(path, options):
    """Mounts a tmpfs; a failure is a test failure, never a skip (the
    ENOSPC and read-only tests need it)."""
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                        path], capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise AssertionError(
            "cannot mount a tmpfs on %s (%s): the ENOSPC / read-only "
            "users-file tests need root and mount(2); stderr: %s"
            % (path, options, p.stderr.strip()))


def remount(path, mode):
    p = subprocess.run(["mount", "-o", "remount,%s" % mode, path],
                       capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        raise AssertionError("remount %s %s: %s" % (mode, path,
                                                    p.stderr.strip()))


def umount(path):
    for _ in range(50):
        p = subprocess.run(["umount", path], capture_output=True,
                           text=True, timeout=20)
        if p.returncode == 0 or not os.path.ismount(path):
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", path], capture_output=True, timeout=20)


class TmpfsUsersServer(Server):
    """A server whose users file is on a tmpfs of `fs_options` mounted at
    <tmp>/fs (mode 0700), so the test can fill it (ENOSPC) or remount it
    read-only.  The tmpfs is unmounted when the server is left."""

    def __init__(self, fs_options="size=256k", **kw):
        super().__init__(**kw)
        self.fs_options = fs_options
        self.fs = None

    def start(self):
        if self.fs is None:
            fs = os.path.join(self.tmp, "fs")
            os.mkdir(fs)
            mount_tmpfs(fs, self.fs_options + ",mode=0700")
            self.fs = fs
            self.users_file = os.path.join(fs, "users")
        super().start()

    def fill(self, name="filler"):
        """Fills the tmpfs (data blocks) until ENOSPC; returns the path."""
        path = os.path.join(self.fs, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != 28:          # ENOSPC
                        raise
        finally:
            os.close(fd)
        return path

    def fill_inodes(self, prefix="inode"):
        """Creates empty files until the tmpfs has no inode left."""
        made = []
        for i in range(100000):
            p = os.path.join(self.fs, "%s.%d" % (prefix, i))
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError as e:
                if e.errno != 28:
                    raise
                return made
            made.append(p)
        raise AssertionError("the tmpfs never ran out of inodes")

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            if self.fs is not None:
                if os.path.ismount(self.fs):
                    subprocess.run(["mount", "-o", "remount,rw", self.fs],
                                   capture_output=True, timeout=20)
                    umount(self.fs)
                self.fs = None
        return super().__exit__(*exc)


# --- the users file -----------------------------------------------------

USERS_LINE = re.compile(r"(?:#.*|[a-z_]+=\d+|%[a-z_]+ .*|"
                        r"([A-Za-z0-9_-][A-Za-z0-9._-]{0,63}):"
                        r"(\$6\$[^:\s]+))")


def parse_users_file(path):
    """The accounts of a users file as dict name -> hash; raises
    AssertionError on any line outside the documented format, on a
    duplicate account, or on a missing final newline."""
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), \
        "users file does not end in a newline: %r" % data[-80:]
    accounts = {}
    for n, raw in enumerate(data.decode("ascii").split("\n")[:-1], 1):
        m = USERS_LINE.fullmatch(raw)
        assert m, "users file line %d malformed: %r" % (n, raw)
        if m.group(1):
            assert m.group(1) not in accounts, \
                "users file line %d: %s twice" % (n, m.group(1))
            accounts[m.group(1)] = m.group(2)
    return accounts


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- maildrops ----------------------------------------------------------

def snapshot(root):
    """path -> (kind, sha256 or link target, mtime_ns) for everything
    under root (lstat: links are not followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                out[rel] = ("file", h, st.st_mtime_ns)
            else:
                out[rel] = ("dir", None, None)
    return out


def plant_maildir(path, marker):
    """A complete maildir at path with one message in new/ and one in
    cur/, both holding marker; returns the list of message paths."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    msg = (b"From: planted@example.org\nSubject: " + marker + b"\n\n"
           + marker + b"\n")
    paths = [os.path.join(path, "new", "1600000001.M1.planted"),
             os.path.join(path, "cur", "1600000002.M2.planted:2,")]
    for p in paths:
        with open(p, "wb") as f:
            f.write(msg)
    return paths


def deliver(maildir, user, name, data, sub="new"):
    """Writes a message as an MDA would (tmp/ then rename into sub/)."""
    base = os.path.join(maildir, user)
    for s in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(base, s), exist_ok=True)
    tmp = os.path.join(base, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    m = re.match(r"(\d+)\.", name)
    if m:
        os.utime(tmp, (int(m.group(1)), int(m.group(1))))
    dst = os.path.join(base, sub, name if sub == "new" else name + ":2,")
    os.rename(tmp, dst)
    return dst


def maildrop_files(maildir, user):
    """base name (up to ':') -> list of (sub, file name, bytes) of the
    regular files in the user's new/ and cur/."""
    out = {}
    for sub in ("new", "cur"):
        d = os.path.join(maildir, user, sub)
        if not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            p = os.path.join(d, n)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            with open(p, "rb") as f:
                out.setdefault(n.split(":", 1)[0], []).append(
                    (sub, n, f.read()))
    return out


def big_message(size, seed=0):
    """A message of about `size` octets with LF line ends and lines that
    start with '.', deterministic for a seed."""
    lines = []
    i = seed
    n = 0
    head = b"From: big@example.org\nSubject: big %d\n\n" % seed
    while n < size:
        if i % 37 == 0:
            ln = b"." * (i % 3 + 1)
        else:
            ln = b"line %d %s" % (i, b"abcdefghij" * (i % 11))
        lines.append(ln)
        n += len(ln) + 1
        i += 1
    return head + b"\n".join(lines) + b"\n"
