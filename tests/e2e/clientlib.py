"""Helpers for the end-to-end tests with real POP3 clients.

Python standard library only.  Builds on the shared harness
tests/lib/pop3test.py (Server, Client, wire_form, unstuff) without changing
it.

Environment knobs (for debugging only; the defaults are what CI uses):
  E2E_MAIL     fixture folder handed to Server(mail=...) (default "mail",
               i.e. tests/fixtures/mail; an absolute path also works)
  E2E_VERBOSE  when set, client transcripts are printed on failure AND
               on success
  E2E_EXTRAS=0 leave out the extra edge-case messages (see EXTRA_MESSAGES)
"""
import base64
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")
if LIB not in sys.path:
    sys.path.insert(0, LIB)

from pop3test import Client, Server, wire_form  # noqa: E402,F401

USER = "alice"
PASSWORD = "secret"
USERS = {USER: PASSWORD}
MAIL = os.environ.get("E2E_MAIL", "mail")
# A hang of any client is a failure, never a stuck suite.
CLIENT_TIMEOUT = 60
# Every test method gets this many seconds in all (SIGALRM watchdog).
TEST_TIMEOUT = 120

# Capabilities the spec requires in CAPA (first token of each line, plus
# the SASL mechanism and the EXPIRE value).
REQUIRED_CAPA = ["USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES",
                 "AUTH-RESP-CODE", "SASL", "EXPIRE", "IMPLEMENTATION"]


# --------------------------------------------------------------------------
# Processes


class Result:
    def __init__(self, cmd, rc, out, err, elapsed):
        self.cmd, self.rc, self.out, self.err = cmd, rc, out, err
        self.elapsed = elapsed

    def text(self):
        return (self.out + self.err).decode("utf-8", "replace")

    def describe(self):
        return "$ %s\nexit %s after %.1fs\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.cmd), self.rc, self.elapsed,
            self.out.decode("utf-8", "replace")[-4000:],
            self.err.decode("utf-8", "replace")[-4000:])


class Hang(AssertionError):
    pass


def clean_env(home):
    """An environment for a client: own HOME, no proxies, C locale."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k.lower() != "no_proxy"}
    env["HOME"] = home
    env["LC_ALL"] = "C"
    env["FETCHMAILHOME"] = home
    return env


def run(cmd, timeout=CLIENT_TIMEOUT, env=None, cwd=None, stdin=b""):
    """Runs a client in its own process group; a timeout kills the whole
    group and raises Hang (a failure)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=cwd,
                         start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        r = Result(cmd, None, out, err, time.monotonic() - t0)
        raise Hang("client hung (killed after %ss):\n%s" % (timeout, r.describe()))
    finally:
        # Nothing of the client may survive it (e.g. an MDA child).
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return Result(cmd, p.returncode, out, err, time.monotonic() - t0)


def need(prog):
    """The path of a client program; a missing client is a FAILURE."""
    path = shutil.which(prog)
    if not path:
        raise AssertionError("%s is not installed (run tests/deps.sh); "
                             "a missing client is a failure" % prog)
    return path


# --------------------------------------------------------------------------
# The maildrop as the tests expect it


class Msg:
    """One message of the maildrop: its number in this session, its UID,
    its LIST size, the file it came from and its bytes."""

    def __init__(self, num, uid, size, path, data):
        self.num, self.uid, self.size, self.path, self.data = num, uid, size, path, data
        self.wire = wire_form(data)
        self.name = os.path.basename(path)

    def __repr__(self):
        return "<msg %d %s %d bytes>" % (self.num, self.name, len(self.data))


def _maildrop_files(maildir, user=USER):
    """Regular files of cur/ and new/ (what the server serves)."""
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(maildir, user, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            p = os.path.join(d, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out.append((st.st_mtime_ns, name, p))
    out.sort()
    return out


def maildrop_paths(server, user=USER):
    return [p for _, _, p in _maildrop_files(server.maildir, user)]


def delivery_order(server, user=USER):
    """Unique names (file name up to ':') in the spec's delivery order:
    file mtime, then name."""
    return [name.split(":")[0] for _, name, _ in _maildrop_files(server.maildir, user)]


def snapshot(server, user=USER, password=PASSWORD, allow_empty=False):
    """The maildrop as a list of Msg, numbered as the server numbers them.

    Logs in once with a raw client (LIST + UIDL, then QUIT: nothing is
    deleted; new/ is moved to cur/ as the server does at login) and maps
    each message number to its file through the UIDL, which the spec makes
    the Maildir unique name (file name up to ':').  UIDs that name no file
    (a name the server had to map to a safe form) fall back to the spec's
    delivery order (mtime, then name) among the files left over."""
    c = Client(server.port)
    try:
        c.login(user, password)
        r = c.cmd("LIST")
        assert r.startswith("+OK"), "LIST: %r" % r
        sizes = {}
        for line in c.multiline().decode("latin-1").split("\r\n"):
            if line:
                n, s = line.split(" ")
                sizes[int(n)] = int(s)
        r = c.cmd("UIDL")
        assert r.startswith("+OK"), "UIDL: %r" % r
        uids = {}
        for line in c.multiline().decode("latin-1").split("\r\n"):
            if line:
                n, u = line.split(" ")
                uids[int(n)] = u
        r = c.cmd("QUIT")
        assert r.startswith("+OK"), "QUIT: %r" % r
    finally:
        c.close()
    assert sorted(sizes) == sorted(uids), "LIST %s vs UIDL %s" % (sizes, uids)
    files = _maildrop_files(server.maildir, user)
    by_uid = {}
    for _, name, p in files:
        by_uid.setdefault(name.split(":")[0], p)
    used, msgs, pending = set(), {}, []
    for n in sorted(sizes):
        p = by_uid.get(uids[n])
        if p is not None and p not in used:
            used.add(p)
            msgs[n] = p
        else:
            pending.append(n)
    rest = [p for _, _, p in files if p not in used]
    for n, p in zip(pending, rest):
        msgs[n] = p
    assert len(msgs) == len(sizes) == len(files), (
        "server lists %d messages, maildrop has %d files" % (len(sizes), len(files)))
    out = []
    for n in sorted(msgs):
        with open(msgs[n], "rb") as f:
            out.append(Msg(n, uids[n], sizes[n], msgs[n], f.read()))
    if not allow_empty:
        extra = set(n.split(":")[0] for _, n, _ in EXTRA_MESSAGES)
        assert [m for m in out if m.uid not in extra], (
            "fixture maildrop tests/fixtures/%s/%s is empty or missing:"
            " the end-to-end tests would prove little" % (MAIL, user))
    return out


# Edge cases the clients meet on top of the fixture maildrop, added to the
# server's temporary copy at the start of every test (never to the
# repository's fixture).  Names start with a Maildir delivery time after
# the fixture's, so they come last in delivery order.
def _big_message():
    lines = [b"Subject: big message with many dot lines", b""]
    i = 0
    size = 0
    while size < 300 * 1024:
        line = b"." * (i % 3) + (b"z" * ((i * 37) % 1500))
        lines.append(line)
        size += len(line) + 1
        i += 1
    return b"\n".join(lines) + b"\n."  # ends in a lone "." without a newline


EXTRA_MESSAGES = [
    ("cur", "1800000001.M1P1.e2e:2,", b"\nNo header at all: the message starts with the blank line.\n.\n"),
    ("cur", "1800000002.M2P1.e2e:2,", b"Subject: header only, no blank line\nX-E2E: 1\n"),
    ("cur", "1800000003.M3P1.e2e:2,S",
     b"Subject: bare CR and NUL\n\na\rb (bare CR inside a line)\nNUL:\x00:end\r\nmixed\n"),
    ("cur", "1800000004.M4P1.e2e:2,",
     b"Subject: long lines\n\n" + b"x" * 5000 + b"\n." + b"y" * 3000 + b"\n"),
    ("new", "1800000005.M5P1.e2e", _big_message()),
    ("cur", "1800000006.M6P1.e2e:2,", b""),  # empty: one empty line
]


def add_extras(server, user=USER):
    base = os.path.join(server.maildir, user)
    for sub, name, data in EXTRA_MESSAGES:
        os.makedirs(os.path.join(base, sub), exist_ok=True)
        p = os.path.join(base, sub, name)
        with open(p, "wb") as f:
            f.write(data)
        t = int(name.split(".")[0])
        os.utime(p, (t, t))


def empty_maildrop(server, user=USER):
    """Removes every message file of user's maildrop in the server's copy."""
    for p in maildrop_paths(server, user):
        os.unlink(p)


def add_message(server, name, data, user=USER):
    """Delivers a new message Maildir-style (tmp/ then rename into new/),
    with an mtime after every existing message."""
    base = os.path.join(server.maildir, user)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    tmp = os.path.join(base, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    latest = max([os.stat(p).st_mtime for p in maildrop_paths(server, user)] + [time.time()])
    os.utime(tmp, (latest + 10, latest + 10))
    dst = os.path.join(base, "new", name)
    os.rename(tmp, dst)
    return dst


# --------------------------------------------------------------------------
# What each client is expected to make of a message (documented changes)


def top_expected(wire, k):
    """TOP n k on the wire (before stuffing): the header, the blank line,
    then k body lines.  A message without a blank line is all header."""
    if wire.startswith(b"\r\n"):
        head, body = b"\r\n", wire[2:]
    else:
        i = wire.find(b"\r\n\r\n")
        if i < 0:
            return wire
        head, body = wire[:i + 4], wire[i + 4:]
    lines = body.split(b"\r\n")[:-1]
    return head + b"".join(l + b"\r\n" for l in lines[:k])


FETCHMAIL_HEADERLESS = b"From: FETCHMAIL-DAEMON\r\n"


def fetchmail_check(testcase, msg, got):
    """Compares what fetchmail handed its MDA with the stored message.

    fetchmail runs with: --invisible (no Received: header of its own),
    `no rewrite` (addresses left alone), `no stripcr` (CRLF kept: by default
    fetchmail strips EVERY CR, bare ones inside a line too, when it delivers
    to an MDA), `bad-header accept` (by default it skips, and leaves on the
    server, a message whose header has a line that is not a header field).
    What fetchmail still changes, by design (transact.c readheaders):
      * a leading Unix "From " envelope line is dropped;
      * a message without a header (empty, or starting with a blank line) is
        wrapped: fetchmail writes its own header ("From: FETCHMAIL-DAEMON",
        "To:", "Subject: Headerless mail from ..."), a blank line, then the
        body;
      * a message that is all header (no blank line) gets the blank line
        that ends the header.
    Everything else must be the server's wire form byte for byte (after
    fetchmail un-stuffs the dot lines)."""
    wire = msg.wire
    if wire.startswith(b"From "):
        wire = wire[wire.index(b"\r\n") + 2:]
    if wire == b"" or wire.startswith(b"\r\n"):
        testcase.assertTrue(got.startswith(FETCHMAIL_HEADERLESS),
                            "%r: headerless message not wrapped: %r" % (msg, got[:200]))
        i = got.index(b"\r\n\r\n")
        testcase.assertEqual(got[i + 4:], wire[2:], "%r: body differs" % msg)
        return
    if b"\r\n\r\n" not in wire:
        wire += b"\r\n"
    testcase.assertEqual(got, wire, "%r differs after fetchmail" % msg)


def mpop_expected(wire):
    """mpop, with received_header off, delivers the message with every CRLF
    line end turned into LF (bare CRs inside a line stay), un-stuffed.
    With received_header on (its default) it would also prepend a
    Received: header."""
    return wire.replace(b"\r\n", b"\n")


# --------------------------------------------------------------------------
# An MDA that stores each message in its own numbered file


DELIVER_PY = r'''
import os, sys
d = sys.argv[1]
data = sys.stdin.buffer.read()
n = len([f for f in os.listdir(d) if not f.startswith(".")]) + 1
tmp = os.path.join(d, ".tmp-%d" % os.getpid())
with open(tmp, "wb") as f:
    f.write(data)
os.rename(tmp, os.path.join(d, "%06d" % n))
'''


class Workdir:
    """A temporary directory for a client: HOME, config, the MDA's output."""

    def __init__(self, prefix="e2e-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o700)
        self.out = os.path.join(self.path, "out")
        os.mkdir(self.out)
        self.deliver = os.path.join(self.path, "deliver.py")
        with open(self.deliver, "w") as f:
            f.write(DELIVER_PY)
        self.env = clean_env(self.path)

    def mda(self, out=None):
        return "%s %s %s" % (sys.executable, self.deliver, out or self.out)

    def write(self, name, text, mode=0o600):
        p = os.path.join(self.path, name)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def delivered(self, out=None):
        d = out or self.out
        names = sorted(n for n in os.listdir(d) if not n.startswith("."))
        res = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                res.append(f.read())
        return res

    def clear(self, out=None):
        d = out or self.out
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------
# A loopback TCP relay that watches the client and can hold its QUIT


class Proxy:
    """Relays 127.0.0.1:self.port to the server's port.

    Records every chunk the client wrote (to see pipelining) and, when
    on_quit is given, calls it just before the client's QUIT reaches the
    server (the client has by then sent its DELEs): the test checks the
    maildrop there.  on_quit's exception, if any, is kept in .errors."""

    def __init__(self, target_port, on_quit=None, settle=0.3):
        self.target = target_port
        self.on_quit = on_quit
        self.settle = settle
        self.chunks = []
        self.errors = []
        self.quit_seen = 0
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.stopping = False
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError as e:
                self.errors.append(e)
                c.close()
                continue
            c.settimeout(CLIENT_TIMEOUT)
            s.settimeout(CLIENT_TIMEOUT)
            self.socks += [c, s]
            threading.Thread(target=self._c2s, args=(c, s), daemon=True).start()
            threading.Thread(target=self._s2c, args=(s, c), daemon=True).start()

    def _s2c(self, s, c):
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                self.last_server = time.monotonic()
                c.sendall(data)
        except OSError:
            pass
        finally:
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _c2s(self, c, s):
        pending = b""
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                self.chunks.append(data)
                pending += data
                out = b""
                while b"\n" in pending:
                    i = pending.index(b"\n") + 1
                    line, pending = pending[:i], pending[i:]
                    if line.strip().upper() == b"QUIT":
                        self.quit_seen += 1
                        if out:
                            s.sendall(out)
                            out = b""
                        if self.on_quit is not None:
                            time.sleep(self.settle)  # let pipelined DELEs land
                            try:
                                self.on_quit()
                            except BaseException as e:  # reported by the test
                                self.errors.append(e)
                    out += line
                if out:
                    s.sendall(out)
        except OSError:
            pass
        finally:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def commands(self):
        return b"".join(self.chunks).decode("latin-1").split("\r\n")

    def pipelined(self):
        """True when the client wrote two or more commands in one write."""
        return any(ch.count(b"\n") >= 2 for ch in self.chunks)

    def close(self):
        self.stopping = True
        self.ls.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.thread.join(2)


# --------------------------------------------------------------------------
# Test base class


def _alarm(signum, frame):
    raise Hang("test exceeded %ss (watchdog)" % TEST_TIMEOUT)


class E2ETest(unittest.TestCase):
    """Base class: a watchdog per test, a fresh Workdir, transcripts kept
    for the failure message."""

    maxDiff = 4000

    def setUp(self):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TEST_TIMEOUT)
        self.wd = Workdir()
        self.addCleanup(self.wd.cleanup)
        self.addCleanup(signal.alarm, 0)

    def server(self, **kw):
        kw.setdefault("users", USERS)
        kw.setdefault("mail", MAIL)
        extras = kw.pop("extras", os.environ.get("E2E_EXTRAS", "1") != "0")
        s = Server(**kw)
        s.__enter__()
        self.addCleanup(s.__exit__, None, None, None)
        self.addCleanup(self.stop_server, s)
        if extras:
            add_extras(s)  # the server reads the maildrop at login
        return s

    def stop_server(self, s):
        """SIGTERM must end the server with status 0 and no sanitizer
        report in its log (the suite may run an ASan/UBSan build)."""
        rc = s.stop()
        log = s.log_text()
        bad = [l for l in log.splitlines()
               if re.search(r"Sanitizer|runtime error:", l)]
        self.assertFalse(bad, "sanitizer report in the server log:\n" + log[-4000:])
        self.assertEqual(rc, 0, "server exit status after SIGTERM\n" + log[-2000:])

    def restart(self, s):
        self.stop_server(s)
        s.start()

    def proxy(self, port, on_quit=None):
        p = Proxy(port, on_quit)
        self.addCleanup(p.close)
        return p

    def quit_watch(self, server, msgs):
        """A proxy that notes, when the client's QUIT reaches it, which of
        msgs' files are already gone (check with assert_gone_only_at_quit)."""
        gone = []

        def before_quit():
            gone.append([m.name for m in msgs if not os.path.exists(m.path)])

        px = self.proxy(server.port, before_quit)
        px.gone_before_quit = gone
        return px

    def assert_gone_only_at_quit(self, px, server, r):
        """One QUIT, nothing removed before it, the maildrop empty after."""
        self.assertFalse(px.errors, px.errors)
        self.assertEqual(px.quit_seen, 1, r.describe())
        self.assertEqual(px.gone_before_quit, [[]], "files removed before QUIT")
        self.assertEqual(maildrop_paths(server), [], "messages left after QUIT")

    def check_run(self, r, ok=(0,)):
        if os.environ.get("E2E_VERBOSE"):
            sys.stdout.write(r.describe() + "\n")
        self.assertIn(r.rc, ok, "unexpected exit status\n" + r.describe())


def b64_plain(user=USER, password=PASSWORD):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def no_busy(testcase, text, what):
    """fetchmail must never think the mailbox is busy/locked."""
    for line in text.splitlines():
        if "POP3>" in line:
            continue  # what fetchmail sent
        if "POP3<" in line and "-ERR" not in line:
            continue  # a positive server reply may say "locked" harmlessly
        if re.search(r"busy|lock|\[IN-USE\]", line, re.I):
            testcase.fail("%s printed a busy/lock message: %r\n%s" % (what, line, text[-3000:]))
