"""Helpers of the operations tests (docs/operations.md, docs/pop3server.8):
make install/uninstall, the manual pages, POP3S through stunnel with the
shipped example configuration, the -g privilege drop, SIGHUP log
reopening and the root warning.

Built on the shared harness tests/lib/pop3test.py, whose API is not
changed here.  Python standard library only; the outside programs
(make, groff, man, openssl, stunnel, curl, mpop) are found with need(),
and a missing one is a FAILURE, never a skip.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from pop3test import (ROOT, SERVER_BIN, Client, Server,  # noqa: E402,F401
                      fixture_messages, free_port, unstuff, wire_form)

MONITOR_BIN = os.path.join(os.path.dirname(os.path.abspath(SERVER_BIN)),
                           "admin_monitor")
STUNNEL_EXAMPLE = os.path.join(ROOT, "docs", "examples",
                               "stunnel-pop3s.conf")
ADMIN_PW = "Adm1n-Pw.7731"
USERS = {"admin": ADMIN_PW, "alice": "secret"}

# The unprivileged account the -g tests drop to (exists on every Debian).
RUN_AS = "nobody"

# No outside program may hang the suite.
CMD_TIMEOUT = 30


# --------------------------------------------------------------------------
# Processes

class Ran:
    """The outcome of one command."""

    def __init__(self, cmd, rc, out, err, elapsed):
        self.cmd, self.rc, self.out, self.err = cmd, rc, out, err
        self.elapsed = elapsed

    @property
    def stdout(self):
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def __repr__(self):
        return "$ %s\nexit %r after %.1fs\n--- stdout ---\n%s\n" \
            "--- stderr ---\n%s" % (" ".join(self.cmd), self.rc, self.elapsed,
                                    self.stdout[-3000:], self.stderr[-3000:])


def clean_env(**extra):
    """The caller's environment without proxies, make variables that
    would steer a sub-make (PREFIX, DESTDIR, MAKEFLAGS...) and with the C
    locale; extra entries are added."""
    drop = {"PREFIX", "DESTDIR", "MANDIR", "DOCDIR", "MAKEFLAGS",
            "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "MANPAGER", "PAGER",
            "MANOPT", "MANPATH", "MANWIDTH"}
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.lower().endswith("_proxy")
           and k.lower() != "no_proxy"}
    env["LC_ALL"] = "C.UTF-8"
    env.update(extra)
    return env


def run(cmd, timeout=CMD_TIMEOUT, env=None, cwd=None, stdin=b"",
        preexec_fn=None):
    """Runs cmd in its own process group; a timeout kills the group and is
    a failure.  Whatever the command left behind in its group is killed
    too."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         env=env if env is not None else clean_env(),
                         cwd=cwd, start_new_session=True,
                         preexec_fn=preexec_fn)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _killpg(p.pid)
        out, err = p.communicate()
        raise AssertionError("hung, killed after %ss:\n%r" % (
            timeout, Ran(cmd, None, out, err, time.monotonic() - t0)))
    finally:
        _killpg(p.pid)
    return Ran(cmd, p.returncode, out, err, time.monotonic() - t0)


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def need(*names):
    """The path of the first of names that is installed; none installed
    is a FAILURE (tests/deps.sh installs them)."""
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    raise AssertionError("%s is not installed (run tests/deps.sh); a missing"
                         " tool is a failure, not a skip" % " or ".join(names))


def need_root(testcase):
    testcase.assertEqual(os.geteuid(), 0,
                         "this test must run as root (it starts the server "
                         "as root); not running it is a failure")


def wait_for(pred, timeout=5.0, step=0.02):
    """Polls pred() until it is true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def listening(port):
    """True when a TCP socket listens on port (any address), read from
    /proc/net/tcp{,6}: no connection is made."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state = fields[1], fields[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) \
                            == port:
                        return True
        except FileNotFoundError:
            continue
    return False


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def proc_status(pid):
    """The Uid:, Gid: and Groups: lines of /proc/PID/status as lists of
    ints (Uid/Gid: real, effective, saved, filesystem)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in val.split()]
    return out


def account(name=RUN_AS):
    """(uid, gid) of a user; asserts it exists."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise AssertionError("no user %r on this system" % name)
    return pw.pw_uid, pw.pw_gid


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(d, n), uid, gid)


def retr(client, n):
    """RETR n on a logged-in Client; the message un-stuffed."""
    first, body = client.multi("RETR %d" % n)
    assert first.startswith("+OK"), "RETR %d -> %r" % (n, first)
    return unstuff(body)


def uidl_map(client):
    """{message number: UIDL} of a logged-in Client."""
    out = {}
    for line in client.multi_lines("UIDL"):
        n, u = line.split(" ")
        out[int(n)] = u
    return out


def monitor(port, *args, password=ADMIN_PW):
    """Runs admin_monitor against the MGMT port."""
    return run([MONITOR_BIN, "--port", str(port), "--host", "127.0.0.1",
                "1.0", "admin", password] + list(args))


# --------------------------------------------------------------------------
# Servers

class DroppedServer(Server):
    """A pop3server started as root with -g USER whose temporary folder
    (mail root, users file) is chowned to USER first, as docs/operations.md
    2.3 prescribes.  The mail root copy is chowned at every start."""

    # Supplementary groups the server is started with (root's group and
    # "daemon"), so that a drop without initgroups() shows in Groups:.
    START_GROUPS = [0, 1]

    def __init__(self, run_as=RUN_AS, args=(), **kw):
        self.run_as = run_as
        self.uid, self.gid = account(run_as)
        kw.setdefault("preexec_fn",
                      lambda: os.setgroups(DroppedServer.START_GROUPS))
        super().__init__(args=["-g", run_as] + list(args), **kw)

    def expected_groups(self):
        """The supplementary groups initgroups(3) gives the user."""
        return sorted(set(os.getgrouplist(self.run_as, self.gid)))

    def start(self):
        os.chmod(self.tmp, 0o700)
        chown_tree(self.tmp, self.uid, self.gid)
        super().start()


# --------------------------------------------------------------------------
# TLS: a throw-away certificate and stunnel from the shipped example

def make_cert(folder):
    """A self-signed RSA certificate for localhost/127.0.0.1 in folder;
    returns (cert, key) paths (the openssl command of operations.md 3)."""
    openssl = need("openssl")
    cert = os.path.join(folder, "pop3s.crt")
    key = os.path.join(folder, "pop3s.key")
    r = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", key, "-out", cert])
    assert r.rc == 0 and os.path.getsize(cert) > 0, "openssl failed:\n%r" % r
    os.chmod(key, 0o600)
    return cert, key


def stunnel_config(example, accept, connect, cert, key):
    """The shipped example with only what a test needs changed: stay in
    the foreground logging to standard error, no setuid/setgid (the test
    runs as root and has no stunnel4 account to rely on), the test's
    ports and certificate.  Every other line (TLS versions, ciphers,
    options, pid, debug) is kept as shipped.  Each replaced setting must
    be in the example exactly once, so a reshaped example fails loudly
    rather than being tested half."""
    repl = {
        "foreground": "foreground = yes",
        "setuid": None,
        "setgid": None,
        "accept": "accept = %s" % accept,
        "connect": "connect = %s" % connect,
        "cert": "cert = %s" % cert,
        "key": "key = %s" % key,
    }
    seen = {k: 0 for k in repl}
    out = []
    for line in example.splitlines():
        m = re.match(r"\s*([A-Za-z]+)\s*=", line)
        if m and m.group(1) in repl:
            seen[m.group(1)] += 1
            if repl[m.group(1)] is not None:
                out.append(repl[m.group(1)])
            continue
        out.append(line)
    bad = {k: n for k, n in seen.items() if n != 1}
    assert not bad, "example %s: settings not found exactly once: %r" % (
        STUNNEL_EXAMPLE, bad)
    return "\n".join(out) + "\n"


class Stunnel:
    """stunnel in the foreground with a config derived from the example,
    accepting TLS on a free 127.0.0.1 port and connecting to
    127.0.0.1:target_port.  Context manager; stops it by its pid."""

    def __init__(self, folder, cert, key, target_port):
        self.folder = folder
        self.port = free_port()
        with open(STUNNEL_EXAMPLE) as f:
            example = f.read()
        self.config = os.path.join(folder, "pop3s-%d.conf" % self.port)
        with open(self.config, "w") as f:
            f.write(stunnel_config(example, "127.0.0.1:%d" % self.port,
                                   "127.0.0.1:%d" % target_port, cert, key))
        self.log_file = os.path.join(folder, "stunnel-%d.log" % self.port)
        self.proc = None

    def __enter__(self):
        exe = need("stunnel4", "stunnel")
        self._log = open(self.log_file, "wb")
        self.proc = subprocess.Popen([exe, self.config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        try:
            ok = wait_for(lambda: listening(self.port)
                          or self.proc.poll() is not None, timeout=10)
            if not ok or self.proc.poll() is not None:
                raise AssertionError(
                    "stunnel did not start (exit %r):\n%s" % (
                        self.proc.poll(), self.log_text()))
        except BaseException:
            self.stop()
            raise
        return self

    def log_text(self):
        return read_text(self.log_file)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.proc = None

    def __exit__(self, *exc):
        self.stop()
        return False


def tls_client(port, maximum=None, ciphers=None, timeout=10.0):
    """A TLS connection to 127.0.0.1:port (certificate not checked, a
    throw-away one) wrapped in the harness Client; returns it and the
    SSL socket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise
    c = Client.__new__(Client)
    c.sock = s
    c.buf = b""
    c.sent = c.received = 0
    return c, s


def tmpdir(testcase, prefix="ops-"):
    """A temporary folder removed when the test ends."""
    d = tempfile.mkdtemp(prefix=prefix)
    testcase.addCleanup(shutil.rmtree, d, True)
    return d
