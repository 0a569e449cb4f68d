"""Shared helpers for the black-box tests: start the real bin/pop3server
on free loopback ports with a temporary copy of a fixture mail root and a
temporary users file, wait until it listens, and always stop it.

Python standard library only.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SERVER_BIN = os.environ.get("POP3SERVER_BIN", os.path.join(ROOT, "bin", "pop3server"))


_ports_given = set()


def free_port(family=socket.AF_INET):
    """A port free now that this process has not been given before: the
    kernel may hand out a just-released port again, and a server given
    the same port for POP3 and MGMT rightly exits 2."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            if len(_ports_given) > 10000:   # never run out of ports
                _ports_given.clear()
            _ports_given.add(port)
            return port


def wait_port(host, port, timeout=10.0, proc=None):
    """Waits until something accepts on host:port (readiness, not sleep)."""
    deadline = time.monotonic() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                s.recv(256)
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on %s:%d" % (host, port))


class Server:
    """A running pop3server.  Use as a context manager.

    users: dict name -> password, given with -u.
    mail: fixture folder (under tests/fixtures) copied as the mail root.
    idle: -T seconds.  args: extra command-line arguments.
    listen: -l address; None leaves -l out (the server's default, all
    addresses); readiness is then checked on 127.0.0.1.
    preexec_fn: run in the child before exec (e.g. resource.setrlimit).
    start_timeout: seconds to wait for the port (many -u take a while).

    The copied messages get their mtime from the number their file name
    starts with (Maildir delivery time), so "mtime, then name" order is
    the name order whatever git did to the fixture files' mtimes.
    """

    def __init__(self, users=None, mail="mail", idle=30, args=(),
                 listen="127.0.0.1", env=None, preexec_fn=None,
                 start_timeout=10.0):
        self.users = dict(users if users is not None else {"alice": "secret"})
        self.mail = mail
        self.idle = idle
        self.args = list(args)
        self.listen = listen
        self.env = env
        self.preexec_fn = preexec_fn
        self.start_timeout = start_timeout
        self.proc = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="pop3test-")
        self.maildir = os.path.join(self.tmp, "mail")
        src = os.path.join(FIXTURES, self.mail) if self.mail else None
        if src and os.path.isdir(src):
            shutil.copytree(src, self.maildir, symlinks=True)
            _normalise_mtimes(self.maildir)
        else:
            os.mkdir(self.maildir)
        self.users_file = os.path.join(self.tmp, "users")
        self.log_file = os.path.join(self.tmp, "server.log")
        self.port = free_port()
        self.mgmt_port = free_port()
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def command(self):
        cmd = [SERVER_BIN, "-p", str(self.port)]
        if self.listen is not None:
            cmd += ["-l", self.listen]
        cmd += ["-P", str(self.mgmt_port), "-L", "127.0.0.1",
                "-d", self.maildir, "-U", self.users_file,
                "-T", str(self.idle)]
        for name, pw in self.users.items():
            cmd += ["-u", "%s:%s" % (name, pw)]
        return cmd + self.args

    def start(self):
        self._log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     env=self.env, preexec_fn=self.preexec_fn)
        wait_port(self.host, self.port, timeout=self.start_timeout,
                  proc=self.proc)

    @property
    def host(self):
        """The address clients of this server connect to."""
        if self.listen is not None and ":" in self.listen:
            return "::1"
        return "127.0.0.1"

    @property
    def pid(self):
        return self.proc.pid

    def client(self, timeout=10.0):
        return Client(self.port, host=self.host, timeout=timeout)

    def rss_kb(self):
        """Resident memory of the server (VmRSS, kB)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self):
        """User + system CPU time the server has used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_log(self, pattern, timeout=5.0):
        """Waits until a line of the log matches the regex; returns the
        match, or None at the timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().splitlines():
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def user_dir(self, user):
        return os.path.join(self.maildir, user)

    def cur_files(self, user):
        """Sorted names of the regular files in the user's cur/."""
        d = os.path.join(self.maildir, user, "cur")
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d)
                      if os.path.isfile(os.path.join(d, n))
                      and not os.path.islink(os.path.join(d, n)))

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the server; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def log_text(self):
        with open(self.log_file, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def sanitizer_report(self):
        """The first sanitizer (ASan/UBSan/LSan) report in the log, or
        None.  Under `make asan` such a report fails the test."""
        text = self.log_text()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:"):
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    def __exit__(self, *exc):
        self.stop()
        report = None
        if os.path.exists(self.log_file):
            report = self.sanitizer_report()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if report and exc[0] is None:
            raise AssertionError("sanitizer report from the server:\n"
                                 + report)
        return False


class SharedServerTest(unittest.TestCase):
    """Tests that share one server for their class: SERVER started with
    the keyword arguments SERVER_KW, as cls.srv."""
    SERVER = Server
    SERVER_KW = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = cls.SERVER(**cls.SERVER_KW).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)


class Client:
    """A raw POP3 client over a socket: send bytes, read lines exactly."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, source=None):
        """source: a local IPv4 address to connect from (127.0.0.2...)."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None) \
            if fam == socket.AF_INET else socket.socket(fam)
        if fam == socket.AF_INET6:
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.buf = b""
        self.sent = 0           # octets sent and received on this
        self.received = 0       # connection (the access log's in/out)

    def _recv(self, n):
        chunk = self.sock.recv(n)
        self.received += len(chunk)
        return chunk

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)
        self.sent += len(data)

    def line(self):
        """One reply line, CRLF included (raises on EOF)."""
        while b"\r\n" not in self.buf:
            chunk = self._recv(65536)
            if not chunk:
                raise EOFError("connection closed; got %r" % self.buf)
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def cmd(self, text):
        """Sends one command and returns its first reply line (str)."""
        self.send(text + "\r\n")
        return self.line().decode("latin-1")

    # The largest reply a test reads (a 50 MB message, stuffed, is far
    # below): a reply that never ends fails instead of filling memory.
    MULTILINE_MAX = 1 << 28

    def multiline(self):
        """The body of a multi-line reply, byte-stuffing still in place,
        up to and excluding the terminating '.\\r\\n'."""
        data = bytearray(self.buf)
        start = 0
        while len(data) <= self.MULTILINE_MAX:
            if data.startswith(b".\r\n"):
                self.buf = bytes(data[3:])
                return b""
            end = data.find(b"\r\n.\r\n", start)
            if end >= 0:
                body, self.buf = bytes(data[:end + 2]), bytes(data[end + 5:])
                return body
            start = max(0, len(data) - 4)
            chunk = self._recv(1 << 20)
            if not chunk:
                self.buf = bytes(data)
                raise EOFError("closed inside a multi-line reply")
            data += chunk
        raise AssertionError("a multi-line reply of over %d octets"
                             % self.MULTILINE_MAX)

    def multi(self, text):
        """Sends a command; returns (first line, body) where body is None
        unless the first line is +OK (body keeps its byte-stuffing)."""
        first = self.cmd(text)
        if not first.startswith("+OK"):
            return first, None
        return first, self.multiline()

    def multi_lines(self, text):
        """A multi-line command's body as a list of str lines (asserts
        +OK)."""
        first, body = self.multi(text)
        assert first.startswith("+OK"), "%s -> %r" % (text, first)
        return [l for l in body.decode("latin-1").split("\r\n")][:-1]

    def greeting(self):
        return self.line().decode("latin-1")

    def quit(self, timeout=5.0):
        """QUIT; returns its reply and waits until the server closes."""
        r = self.cmd("QUIT")
        assert self.closed(timeout), "QUIT did not close the connection"
        self.close()
        return r

    def login(self, user="alice", password="secret"):
        self.line()
        r = self.cmd("USER " + user)
        assert r.startswith("+OK"), r
        r = self.cmd("PASS " + password)
        assert r.startswith("+OK"), r
        return r

    def closed(self, timeout=5.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self._recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def _normalise_mtimes(root):
    for user in os.listdir(root):
        for sub in ("cur", "new"):
            d = os.path.join(root, user, sub)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                p = os.path.join(d, name)
                m = re.match(r"(\d+)\.", name)
                if m and os.path.isfile(p) and not os.path.islink(p):
                    t = int(m.group(1))
                    os.utime(p, (t, t))


def fixture_messages(user, mail="mail"):
    """The fixture messages of a user in delivery order, as a list of
    (uid, raw file bytes, name in cur/ after login or None when the
    server picks the info suffix)."""
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(FIXTURES, mail, user, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            with open(os.path.join(d, name), "rb") as f:
                out.append((name.split(":", 1)[0], f.read(),
                            name if sub == "cur" else None))
    out.sort(key=lambda m: m[0])
    return out


def stuff(wire):
    """Byte-stuffs a message already in wire form (every line that starts
    with '.' gets one more)."""
    return re.sub(rb"(?m)^\.", b"..", wire)


def top_form(wire, k):
    """What TOP n k must return for a message in wire form: the headers,
    the blank line and the first k body lines (before stuffing)."""
    sep = wire.find(b"\r\n\r\n")
    if sep < 0:
        return wire
    pos = sep + 4
    for _ in range(k):
        nxt = wire.find(b"\r\n", pos)
        if nxt < 0:
            return wire
        pos = nxt + 2
    return wire[:pos]


def unstuff(body):
    """Undoes POP3 byte-stuffing of a multi-line body."""
    lines = body.split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


def wire_form(data):
    """What a message file must look like on the wire (before stuffing):
    LF -> CRLF unless already CRLF, and a final line end added (an
    empty message is one empty line)."""
    out = re.sub(rb"(?<!\r)\n", b"\r\n", data)
    if not out.endswith(b"\n"):
        out += b"\r\n"
    return out
