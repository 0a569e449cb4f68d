"""The process: signals, SIGPIPE, IPv6, the access log, the command line,
the users file (admin creation, -u persistence), restart after a crash."""
import base64
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from pop3test import (SERVER_BIN, Client, Server, fixture_messages,  # noqa
                      free_port, stuff, wire_form)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt
    except ImportError:               # Python >= 3.13
        crypt = None

USERS = {"alice": "secret", "bob": "hunter2"}
MSGS = fixture_messages("alice")
WIRES = [wire_form(m[1]) for m in MSGS]
N = len(MSGS)
TOTAL = sum(len(w) for w in WIRES)
ISO = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d")


GOODBYE = b"-ERR [SYS/TEMP] server shutting down\r\n"


def relogin(srv, user="alice", password="secret", timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        c = srv.client()
        c.greeting()
        c.cmd("USER " + user)
        r = c.cmd("PASS " + password)
        if r.startswith("+OK"):
            return c
        c.close()
        if time.monotonic() > deadline:
            raise AssertionError("cannot log in again: %r" % r)
        time.sleep(0.05)


def users_lines(srv):
    with open(srv.users_file) as f:
        return [l.rstrip("\n") for l in f]


class Signals(unittest.TestCase):
    def check_signal_keeps_mail(self, sig):
        with Server(users=USERS) as srv:
            c = srv.client()
            c.login()
            names = srv.cur_files("alice")
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
            self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
            idle = srv.client()
            idle.greeting()
            srv.proc.send_signal(sig)
            try:
                rc = srv.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.fail("server did not exit on %s" % sig.name)
            self.assertEqual(rc, 0)
            self.assertTrue(c.closed(2), "session not closed at shutdown")
            self.assertTrue(idle.closed(2))
            # Logged in or not, each learns why, as from Dovecot.
            self.assertEqual(c.buf, GOODBYE)
            self.assertEqual(idle.buf, GOODBYE)
            self.assertEqual(srv.cur_files("alice"), names)
            log = srv.log_text()
            self.assertTrue(any("user=alice" in l and "reason=shutdown" in l
                                for l in log.splitlines()),
                            "no reason=shutdown summary for alice:\n" + log)
            # The lines operations.md's sample log shows around a run.
            self.assertIn(" info: pop3server shutting down\n", log)
            self.assertIn(" info: pop3: listening on port %d (1 socket)\n"
                          % srv.port, log)
            self.assertIn(" info: mgmt: listening on port %d (1 socket)\n"
                          % srv.mgmt_port, log)
            c.close()
            idle.close()

    def test_sigterm_mid_retr_adds_nothing_to_the_message(self):
        # A line after half a message would read as part of it: the
        # client sees the message cut short (no final ".") and nothing
        # else.
        with Server(users=USERS) as srv:
            path = os.path.join(srv.user_dir("alice"), "cur",
                                "1800000000.Mbig.test:2,")
            with open(path, "wb") as f:
                f.write(b"Subject: big\n\n" + (b"y" * 79 + b"\n") * 100000)
            c = srv.client()
            # A small window, so that most of the 8 MB is still unsent.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.login()
            c.send("RETR %d\r\n" % (N + 1))
            self.assertTrue(c.line().startswith(b"+OK"))
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertTrue(c.closed(5), "session not closed at shutdown")
            self.assertGreater(len(c.buf), 0)
            self.assertTrue((b"y" * 79 + b"\r\n").startswith(
                c.buf.rsplit(b"\r\n", 1)[-1]), c.buf[-200:])
            self.assertNotIn(b"-ERR", c.buf)
            self.assertFalse(c.buf.endswith(b"\r\n.\r\n"))
            c.close()

    def test_sigterm_with_pending_dele(self):
        self.check_signal_keeps_mail(signal.SIGTERM)

    def test_sigint_with_pending_dele(self):
        self.check_signal_keeps_mail(signal.SIGINT)

    def test_sigterm_with_logins_waiting_for_their_check(self):
        # Forty first logins queue forty crypt(3)s, one per pass: most
        # still wait when SIGTERM comes.  They are dropped without
        # calling back into a session that is gone (make asan checks),
        # every client is closed and the exit is clean.
        users = {"user%d" % i: "pw%d" % i for i in range(40)}
        with Server(users=users, mail=None) as srv:
            clients = [srv.client() for _ in users]
            for c, (name, pw) in zip(clients, users.items()):
                c.send("USER %s\r\nPASS %s\r\n" % (name, pw))
            for c in clients:
                c.greeting()
                self.assertEqual(c.line(), b"+OK send PASS\r\n")
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(10), 0)
            for c in clients:
                self.assertTrue(c.closed(2), "session not closed")
                c.close()
            self.assertIsNone(srv.sanitizer_report())

    def test_sigpipe_does_not_kill(self):
        with Server(users=USERS) as srv:
            path = os.path.join(srv.user_dir("alice"), "cur",
                                "1800000000.Mbig.test:2,")
            with open(path, "wb") as f:
                f.write(b"Subject: big\n\n")
                f.write((b"x" * 79 + b"\n") * (100 * 1024))   # 8 MB
            other = srv.client()
            other.login("bob", "hunter2")
            # "at-once": closed before the reply comes (FIN; the server's
            # next write gets EPIPE); "after-line": closed with unread data
            # (RST); "linger0": an explicit RST.
            for how in ("at-once", "after-line", "linger0") * 2:
                c = relogin(srv)
                c.send("RETR %d\r\n" % (N + 1))
                if how != "at-once":
                    c.line()
                if how == "linger0":
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                c.close()
                self.assertTrue(other.cmd("NOOP").startswith("+OK"), how)
                self.assertIsNone(srv.proc.poll(), "server died (%s)" % how)
            c = relogin(srv)
            first, body = c.multi("RETR 1")
            self.assertEqual(body, stuff(WIRES[0]))
            c.quit()
            other.quit()


class IPv6(unittest.TestCase):
    def test_login_over_ipv6_loopback(self):
        with Server(users=USERS, listen="::1") as srv:
            c = Client(srv.port, host="::1")
            c.login()
            r = c.cmd("STAT")
            self.assertTrue(r.startswith("+OK %d %d" % (N, TOTAL)), r)
            first, body = c.multi("RETR 2")
            self.assertEqual(body, stuff(WIRES[1]))
            port = c.sock.getsockname()[1]
            c.quit()
            # Bracketed, as operations.md shows: the recipes split the
            # address from the port at the last ':'.
            self.assertIsNotNone(
                srv.wait_log(r" pop3\[\d+\] \[::1\]:%d user=alice " % port),
                "client [::1]:%d not in the log:\n%s"
                % (port, srv.log_text()))

    def test_default_listens_on_ipv4_and_ipv6(self):
        with Server(users=USERS, listen=None) as srv:
            for host in ("127.0.0.1", "::1"):
                c = Client(srv.port, host=host)
                c.login()
                self.assertTrue(c.cmd("NOOP").startswith("+OK"))
                c.quit()


class AccessLog(unittest.TestCase):
    def summary(self, srv, reason, user="alice", timeout=5):
        m = srv.wait_log(r"^(?=.*user=%s\b)(?=.*\breason=%s\b).*$"
                         % (user, reason), timeout)
        self.assertIsNotNone(m, "no reason=%s summary line for %s in:\n%s"
                             % (reason, user, srv.log_text()))
        return m.group(0)

    def field(self, line, rx):
        m = re.search(r"(?:^|\s)" + rx + r"(?=\s|,|$)", line)
        self.assertIsNotNone(m, "%r not in %r" % (rx, line))
        return [int(g) for g in m.groups()]

    def test_timestamps_are_utc_whatever_tz_says(self):
        # A log read beside another host's must not shift with TZ.
        env = dict(os.environ, TZ="UTC-5")
        with Server(users=USERS, env=env) as srv:
            c = srv.client()
            c.login()
            c.quit()
            m = re.search(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)"
                          r"\.\d{3}Z ", srv.log_text(), re.M)
            self.assertIsNotNone(m, srv.log_text())
            stamp = time.mktime(time.strptime(m.group(1),
                                              "%Y-%m-%dT%H:%M:%S"))
            utc_now = time.mktime(time.gmtime())
            self.assertLess(abs(utc_now - stamp), 120, m.group(0))

    def test_connect_login_and_quit_summary(self):
        with Server(users=USERS) as srv:
            c = srv.client()
            port = str(c.sock.getsockname()[1])
            c.login()
            c.multi("RETR 1")
            c.multi("RETR 2")
            c.multi("TOP 3 0")
            self.assertTrue(c.cmd("DELE 4").startswith("+OK"))
            self.assertTrue(c.cmd("DELE 5").startswith("+OK"))
            c.quit()
            line = self.summary(srv, "quit")
            log = srv.log_text().splitlines()
            mine = [l for l in log if re.search(r"\b%s\b" % port, l)]
            # Every line names a user; none is known at connect yet.
            self.assertTrue(any(l.endswith(" user=- connect") for l in mine),
                            "no connect line with port %s:\n%s"
                            % (port, "\n".join(log)))
            self.assertTrue(any(re.search(r"\blogin\b", l)
                                and "login-failed" not in l
                                and "user=alice" in l for l in mine),
                            "no login line:\n" + "\n".join(log))
            self.assertIn(port, line)
            self.assertIn("127.0.0.1", line)
            self.assertRegex(line, r"\blogout\b")
            for l in mine:
                self.assertRegex(l, ISO, "no ISO-8601 timestamp first")
            count, octets = self.field(line, r"retr=(\d+)/(\d+)")
            self.assertEqual(count, 2)
            self.assertGreaterEqual(octets, len(WIRES[0]) + len(WIRES[1]))
            self.assertLess(octets, len(WIRES[0]) + len(WIRES[1]) + 400)
            self.assertEqual(self.field(line, r"top=(\d+)"), [1])
            self.assertEqual(self.field(line, r"dele=(\d+)/(\d+)"), [2, N])
            self.field(line, r"size=(\d+)")
            self.assertEqual(self.field(line, r"in=(\d+)"), [c.sent])
            self.assertEqual(self.field(line, r"out=(\d+)"), [c.received])

    def test_cut_retr_is_not_counted_as_read(self):
        """A RETR the client hung up on is not 'read' in retr=: the log
        answers "who read what", and out= shows what really left."""
        with Server(users=USERS) as srv:
            path = os.path.join(srv.user_dir("alice"), "cur",
                                "1800000000.M1.big:2,")
            big = b"Subject: big\n\n" + (b"y" * 1000 + b"\n") * 20000
            with open(path, "wb") as f:
                f.write(big)
            c = srv.client()
            c.login()
            c.multi("RETR 1")
            c.send("RETR %d\r\n" % (N + 1))
            self.assertTrue(c.line().startswith(b"+OK"))
            c.sock.recv(1000)
            c.close()
            line = self.summary(srv, "disconnect")
            self.assertEqual(self.field(line, r"retr=(\d+)/(\d+)"),
                             [1, len(WIRES[0])])
            out = self.field(line, r"out=(\d+)")[0]
            self.assertLess(out, len(wire_form(big)), "the big RETR was "
                            "sent whole: nothing proves it was cut")

    def test_login_failed_logged(self):
        with Server(users=USERS) as srv:
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS wrong-one").startswith("-ERR"))
            c.close()
            m = srv.wait_log(r"login-failed")
            self.assertIsNotNone(m, srv.log_text())

    def test_maildrop_failure_logged_with_peer(self):
        """A right password whose maildrop cannot be opened still leaves
        a login outcome naming the client's address."""
        with Server(users=USERS) as srv:
            d = srv.user_dir("alice")
            shutil.rmtree(d)
            with open(d, "w") as f:
                f.write("not a folder\n")
            c = srv.client()
            port = c.sock.getsockname()[1]
            c.greeting()
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS %s" % USERS["alice"])
                            .startswith("-ERR [SYS/TEMP]"))
            c.close()
            m = srv.wait_log(r"pop3\[\d+\] 127\.0\.0\.1:%d user=alice "
                             r"login-failed maildrop$" % port)
            self.assertIsNotNone(m, srv.log_text())

    def test_maildrop_failure_releases_the_lock(self):
        """A login whose maildrop failed holds no lock: once the folder
        is back, the owner logs in (not [IN-USE] until a restart)."""
        with Server(users=USERS) as srv:
            d = srv.user_dir("alice")
            shutil.move(d, d + ".away")
            with open(d, "w") as f:
                f.write("not a folder\n")
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS %s" % USERS["alice"])
                            .startswith("-ERR [SYS/TEMP]"))
            os.unlink(d)
            shutil.move(d + ".away", d)
            # the first session stays open: it must hold nothing
            c2 = srv.client()
            c2.greeting()
            c2.cmd("USER alice")
            r = c2.cmd("PASS %s" % USERS["alice"])
            self.assertTrue(r.startswith("+OK"), r)
            c2.quit()
            c2.close()
            c.close()

    def test_reason_disconnect(self):
        with Server(users=USERS) as srv:
            c = srv.client()
            c.login()
            c.close()
            self.summary(srv, "disconnect")

    def test_reason_after_three_failed_logins(self):
        """The server ends it: the summary keeps to the spec's reasons
        (disconnect), and the line before says why."""
        with Server(users=USERS) as srv:
            c = srv.client()
            c.greeting()
            for i in range(3):
                c.cmd("USER alice")
                c.send("PASS wrong-%d\r\n" % i)
                self.assertTrue(c.line().startswith(b"-ERR [AUTH]"))
            self.assertTrue(c.closed(5))
            c.close()
            line = self.summary(srv, "disconnect")
            self.assertRegex(line, r"reason=disconnect$")
            self.assertRegex(srv.log_text(), r"user=alice closed by the "
                             r"server: too many failed logins or bad commands")

    def test_reason_timeout(self):
        with Server(users=USERS, idle=2) as srv:
            c = srv.client()
            c.login()
            self.assertTrue(c.closed(8))
            c.close()
            self.summary(srv, "timeout")

    def test_reason_shutdown(self):
        with Server(users=USERS) as srv:
            c = srv.client()
            c.login()
            self.assertEqual(srv.stop(), 0)
            c.close()
            self.summary(srv, "shutdown", timeout=0)

    def test_log_option_writes_to_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "access.log")
            with Server(users=USERS, args=["--log", path]) as srv:
                c = srv.client()
                c.login()
                c.quit()
                deadline = time.monotonic() + 5
                text = ""
                while time.monotonic() < deadline:
                    if os.path.exists(path):
                        with open(path) as f:
                            text = f.read()
                        if "reason=quit" in text:
                            break
                    time.sleep(0.05)
                self.assertIn("user=alice", text)
                self.assertIn("reason=quit", text)
                self.assertRegex(text, r"\bconnect\b")

    def test_password_never_logged(self):
        pw = "S3cr3t-Zebra"
        wrong = ["Wr0ng-Giraffe", "Wr0ng-Okapi", "Wr0ng-Tapir"]
        with Server(users={"alice": pw, "bob": "hunter2"}) as srv:
            c = srv.client()
            c.login("alice", pw)
            c.quit()
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS " + wrong[0]).startswith("-ERR"))
            c.cmd("USER nosuchuser")
            self.assertTrue(c.cmd("PASS " + pw).startswith("-ERR"))
            c.close()
            secrets = [pw] + wrong
            c = srv.client()
            c.greeting()
            ok = base64.b64encode(b"\0alice\0" + pw.encode()).decode()
            bad = base64.b64encode(b"\0alice\0" + wrong[1].encode()).decode()
            secrets += [ok, bad]
            self.assertTrue(c.cmd("AUTH PLAIN " + bad).startswith("-ERR"))
            self.assertTrue(c.cmd("AUTH PLAIN " + ok).startswith("+OK"))
            c.quit()
            c = srv.client()
            c.greeting()
            self.assertTrue(c.cmd("AUTH PLAIN").startswith("+"))
            cont = base64.b64encode(b"alice\0alice\0" + wrong[2].encode())
            secrets.append(cont.decode())
            self.assertTrue(c.cmd(cont.decode()).startswith("-ERR"))
            c.close()
            self.assertEqual(srv.stop(), 0)
            log = srv.log_text()
            self.assertIn("login-failed", log)
            for s in secrets:
                self.assertNotIn(s, log)
            with open(srv.users_file) as f:
                self.assertNotIn(pw, f.read())


class CommandLine(unittest.TestCase):
    """Options are checked before any socket is opened: the POP3 and
    MGMT ports are held by the test, so a server that bound before
    checking would fail with 1 (port in use) instead of 2."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pop3opt-")
        self.mail = os.path.join(self.tmp, "mail")
        os.mkdir(self.mail)
        self.users = os.path.join(self.tmp, "users")
        self.holders = []

    def tearDown(self):
        for s in self.holders:
            s.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def hold_port(self, host="127.0.0.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen(1)
        self.holders.append(s)
        return s.getsockname()[1]

    def run_server(self, args, base=True, timeout=10):
        cmd = [SERVER_BIN]
        if base:
            cmd += ["-p", str(self.hold_port()), "-l", "127.0.0.1",
                    "-P", str(self.hold_port()), "-L", "127.0.0.1",
                    "-d", self.mail, "-U", self.users]
        try:
            p = subprocess.run(cmd + list(args), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("%s still running after %d s" % (args, timeout))
        return p.returncode, p.stdout.decode("latin-1"), \
            p.stderr.decode("latin-1")

    def check_bad(self, args):
        rc, out, err = self.run_server(args)
        self.assertEqual(rc, 2, "%s: exit %s, stderr %r" % (args, rc, err))
        self.assertTrue(err.strip(), "%s: no message on stderr" % (args,))
        # every usage error points at the help, like GNU tools
        self.assertTrue(err.endswith("Try 'pop3server -h' for help.\n"),
                        "%s: %r" % (args, err))

    def test_bad_option_is_named(self):
        # The option getopt refused, not the argument before it.
        for args, named in ((["-d", self.mail, "-Zx"], "'-Z'"),
                            (["--allow-root", "-Zx"], "unknown option '-Z'"),
                            (["-p"], "option '-p' needs a value"),
                            (["--log"], "option '--log' needs a value"),
                            (["--no-such=1"], "unknown option '--no-such'"),
                            (["--allow-root=1"],
                             "option '--allow-root' takes no value")):
            rc, out, err = self.run_server(args)
            self.assertEqual(rc, 2, err)
            self.assertIn(named, err, args)

    def test_multiline_filter_exits_2(self):
        # FILTER and the log show the filter as one line: a line break
        # would end the MGMT reply early and forge log lines.
        for cmd in ("cat\n.\necho done", "cat\r", "cat #\x1b[2J", " \t "):
            rc, out, err = self.run_server(["-t", cmd])
            self.assertEqual(rc, 2, err)
            self.assertIn("-t: the command must be one line", err)

    def test_u_typo_does_not_echo_the_password(self):
        rc, out, err = self.run_server(["-u", "alice=S3cretPw"])
        self.assertEqual(rc, 2, err)
        self.assertNotIn("S3cretPw", err)

    def test_same_port_for_pop3_and_mgmt_exits_2(self):
        port = str(self.hold_port())
        rc, out, err = self.run_server(["-p", port, "-P", port])
        self.assertEqual(rc, 2, err)
        self.assertIn("-p and -P are both %s" % port, err)
        # Different texts for one address, a wildcard, MGMT's default
        # (loopback): the same collision, found before binding.
        for addrs in ([],                   # both defaults: the usual slip
                      ["-l", "localhost", "-L", "127.0.0.1"],
                      ["-l", "0.0.0.0", "-L", "127.0.0.1"],
                      ["-l", "127.0.0.1", "-L", "0.0.0.0"],
                      ["-l", "::1", "-L", "::"],
                      ["-l", "::1"],
                      ["-l", "127.0.0.1"]):
            rc, out, err = self.run_server(
                ["-p", port, "-P", port, "-d", self.mail, "-U", self.users]
                + addrs, base=False)
            self.assertEqual(rc, 2, (addrs, err))
            self.assertIn("-p and -P are both %s" % port, err)

    def test_range_edges_are_accepted(self):
        # The first and last value of each range pass the checks: the
        # server goes on to bind, and the held ports make that exit 1.
        for args in (["-T", "1"], ["-T", "86400"], ["-m", "1"],
                     ["--filter-timeout", "1"],
                     ["--filter-timeout", "86400"]):
            with self.subTest(args=args):
                rc, out, err = self.run_server(args)
                self.assertEqual(rc, 1, "%s: exit %s, stderr %r"
                                 % (args, rc, err))

    def test_port_in_use_exits_1(self):
        busy = self.hold_port()
        rc, out, err = self.run_server(
            ["-p", str(busy), "-l", "127.0.0.1", "-P", str(free_port()),
             "-L", "127.0.0.1", "-d", self.mail, "-U", self.users],
            base=False)
        self.assertEqual(rc, 1, err)
        self.assertTrue(err.strip())

    def test_mgmt_port_in_use_exits_1(self):
        busy = self.hold_port()
        rc, out, err = self.run_server(
            ["-p", str(free_port()), "-l", "127.0.0.1", "-P", str(busy),
             "-L", "127.0.0.1", "-d", self.mail, "-U", self.users],
            base=False)
        self.assertEqual(rc, 1, err)
        self.assertTrue(err.strip())

    def test_log_fifo_exits_2(self):
        # A FIFO nobody reads would block open(2) for good.
        fifo = os.path.join(self.tmp, "log.fifo")
        os.mkfifo(fifo)
        rc, out, err = self.run_server(["--log", fifo])
        self.assertEqual(rc, 2, err)
        self.assertIn("log.fifo: not a regular file", err)

    def test_help(self):
        rc, out, err = self.run_server(["-h"], base=False)
        self.assertEqual(rc, 0, err)
        text = out + err
        for opt in ("-p", "-l", "-P", "-L", "-d", "-u", "-U", "-T",
                    "-m", "-v", "-h"):
            self.assertRegex(text, r"(^|[\s\[,])%s\b" % re.escape(opt),
                             "-h does not list %s" % opt)

    def test_version(self):
        rc, out, err = self.run_server(["-v"], base=False)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out + err, r"\d+\.\d+")

    def test_help_and_version_unwritten_fail(self):
        # A script that checks the status must not take a lost answer
        # for one given (/dev/full: every write fails).
        for opt in ("-h", "-v"):
            with self.subTest(option=opt), open("/dev/full", "wb") as full:
                p = subprocess.run([SERVER_BIN, opt], stdout=full,
                                   stderr=subprocess.PIPE, timeout=10)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(b"cannot write the output", p.stderr)

    def test_restart_right_after_kill_binds_at_once(self):
        with Server(users=USERS) as srv:
            c = srv.client()
            c.login()
            srv.stop(signal.SIGKILL)
            self.assertTrue(c.closed(2))
            c.close()
            srv.start()                 # the port is in TIME_WAIT now
            c = relogin(srv)
            self.assertTrue(c.cmd("STAT").startswith("+OK %d" % N))
            c.quit()


BAD_OPTIONS = {
    "unknown_option": ["-Z"],
    "unknown_long_option": ["--no-such-option"],
    "missing_value": ["-p"],
    "missing_value_d": ["-d"],
    "port_0": ["-p", "0"],
    "port_70000": ["-p", "70000"],
    "port_abc": ["-p", "abc"],
    "port_trailing_junk": ["-p", "12ab"],
    "port_negative": ["-p", "-1"],
    "mgmt_port_70000": ["-P", "70000"],
    "user_without_colon": ["-u", "alice"],
    # refused before any socket is bound, not after (exit 1)
    "user_empty_password": ["-u", "alice:"],
    "user_password_with_space": ["-u", "alice:a b"],
    # one more than the 4096 the table holds
    "too_many_users": [a for i in range(4097)
                       for a in ("-u", "u%d:pw%d" % (i, i))],
    # a typo such as "-d /srv/mail extra" must not go unnoticed
    "stray_argument": ["stray"],
    # addresses that cannot be resolved (no DNS query needed to know)
    "pop3_address_bad": ["-l", "fe80::1%nosuchif"],
    "mgmt_address_bad": ["-L", "::1%nosuchif"],
    # IPv6-only sockets cannot bind these: found before any socket.
    "pop3_address_v4_mapped": ["-l", "::ffff:127.0.0.1"],
    "mail_root_missing": ["-d", "@TMP@/no-such-dir"],
    "mail_root_is_a_file": ["-d", "@TMP@/regular-file"],
    "idle_abc": ["-T", "abc"],
    "idle_negative": ["-T", "-1"],
    # the range is 1 to 86400 (pop3server(8))
    "idle_0": ["-T", "0"],
    "idle_86401": ["-T", "86401"],
    "max_conn_0": ["-m", "0"],
    "max_conn_abc": ["-m", "abc"],
    "run_as_unknown_user": ["-g", "no-such-user-x9"],
    # MGMT's FILTER shows the command on one reply line.
    "filter_too_long": ["-t", "x" * 401],
}


def _bad_option_test(args):
    def test(self):
        open(os.path.join(self.tmp, "regular-file"), "w").close()
        self.check_bad([a.replace("@TMP@", self.tmp) for a in args])
    return test


for _name, _args in BAD_OPTIONS.items():
    setattr(CommandLine, "test_bad_" + _name, _bad_option_test(_args))


def failed_start(tmp, users_file, args=()):
    """Runs the server on free ports with the mail root tmp/mail and
    users_file, for a start that must fail: it has 10 s to exit, and a
    server still running then (hung, or serving) is killed and fails the
    test."""
    mail = os.path.join(tmp, "mail")
    os.makedirs(mail, exist_ok=True)
    cmd = [SERVER_BIN, "-p", str(free_port()), "-l", "127.0.0.1",
           "-P", str(free_port()), "-L", "127.0.0.1", "-d", mail,
           "-U", users_file] + list(args)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s still running after 10 s" % cmd)
    return p.returncode, p.stderr.decode("latin-1")


class UsersFile(unittest.TestCase):
    def tmpdir(self):
        tmp = tempfile.mkdtemp(prefix="pop3test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        return tmp

    def test_admin_created_with_printed_password(self):
        with Server(users={"alice": "secret"}) as srv:
            lines = users_lines(srv)
            admin = [l for l in lines if l.startswith("admin:")]
            self.assertEqual(len(admin), 1, lines)
            self.assertTrue(admin[0].startswith("admin:$6$"), admin)
            mode = stat.S_IMODE(os.stat(srv.users_file).st_mode)
            self.assertEqual(mode, 0o600, oct(mode))
            log = srv.log_text()
            self.assertIn("admin", log)
            self.assertIsNotNone(crypt, "Python crypt module needed")
            h = admin[0].split(":", 1)[1]
            cands = set()
            for tok in re.findall(r"[\x21-\x7e]+", log):
                cands.add(tok)
                cands.add(tok.strip("'\"`.,;:()[]<>"))
                if "=" in tok:
                    cands.add(tok.split("=", 1)[1].strip("'\"`.,;"))
                if ":" in tok:
                    cands.add(tok.split(":", 1)[1].strip("'\"`.,;"))
            found = [t for t in cands if t and crypt.crypt(t, h) == h]
            self.assertEqual(len(found), 1,
                             "the admin password is not printed:\n" + log)
            self.assertEqual(log.count(found[0]), 1)
            # a restart keeps the admin and prints nothing new
            srv.stop()
            srv.start()
            c = srv.client()
            c.login()
            c.quit()
            self.assertEqual([l for l in users_lines(srv)
                              if l.startswith("admin:")], admin)
            self.assertEqual(srv.log_text().count(found[0]), 1)
            self.assertEqual(
                srv.log_text().count("created administrator"), 1)

    def test_unwritable_users_file_prints_no_admin_password(self):
        # The generated password is shown only once it is saved.
        tmp = self.tmpdir()
        rc, err = failed_start(tmp, os.path.join(tmp, "no-such-dir", "users"))
        self.assertEqual(rc, 1, err)
        self.assertIn("cannot write", err)
        self.assertNotIn("password", err)

    def start_with_users_file(self, name, make):
        """-U names tmp/name, which make(path) creates: the start must
        fail with status 1; returns its standard error."""
        users = os.path.join(self.tmpdir(), name)
        make(users)
        rc, err = failed_start(os.path.dirname(users), users)
        self.assertEqual(rc, 1, err)
        return err

    def refused_users_text(self, text):
        """A users file holding text must stop the start with status 1:
        returns its path and the standard error."""
        tmp = self.tmpdir()
        users = os.path.join(tmp, "users")
        with open(users, "w") as f:
            f.write(text)
        rc, err = failed_start(tmp, users)
        self.assertEqual(rc, 1, err)
        return users, err

    def test_users_file_a_directory_names_the_cause(self):
        # The system's reason, and no "(line 0)" where no line is at fault.
        err = self.start_with_users_file("users.d", os.mkdir)
        self.assertIn("users.d: Is a directory", err)
        self.assertNotIn("line", err)

    def test_users_file_fifo_exits_1(self):
        # Like any users file that cannot be read; reading a FIFO nobody
        # writes to would block for good.
        err = self.start_with_users_file("users.fifo", os.mkfifo)
        self.assertIn("users.fifo: not a regular file", err)

    def test_hand_edited_bad_line_stops_the_start(self):
        # What MGMT would refuse, and hashes crypt(3) never makes, are bad
        # lines like any other: idle_timeout=0 logged every POP3 session
        # out at once, a cut admin hash locked the administrator out.
        fine = "alice:$6$abcdefghijklmnop$" + "x" * 86 + "\n"
        for bad in ("idle_timeout=0", "idle_timeout=86401", "max_users=0",
                    "max_connections=0",
                    "admin:$6$ta2oC/osHnU6OioU$JWmU/a9KSK/Iua",
                    "bob:$6$trunc", "max_users=1\n" + fine.replace("alice",
                                                                  "bob")):
            with self.subTest(line=bad):
                users, err = self.refused_users_text(fine + bad + "\n")
                self.assertIn("%s: malformed line, or a value out of range, "
                              "in users file (line 2)" % users, err)

    def test_saved_filter_no_longer_valid_stops_the_start(self):
        # Saved by MGMT FILTER before it checked its command (a tab made
        # every RETR an empty message) or by hand: refused before an
        # administrator is created, so the file is left as it was.
        fine = "alice:$6$abcdefghijklmnop$" + "x" * 86 + "\n"
        for bad in ("%filter \t", "%filter tr \x01 x", "%filter " + "y" * 401,
                    "%filter - "):
            with self.subTest(line=bad):
                users, err = self.refused_users_text(fine + bad + "\n")
                self.assertIn("%s: the %%filter line's command must be one "
                              "line of at most 400 octets" % users, err)
                self.assertNotIn("password", err)
                with open(users) as f:
                    self.assertEqual(f.read(), fine + bad + "\n")

    def test_users_file_open_to_others_made_0600(self):
        # A users file copied in by hand with mode 0644 showed every
        # password hash to every local user for as long as nothing was
        # saved; a start without -u saves nothing.  Group or others,
        # reading or writing: each is too open.
        with Server(users={"alice": "secret"}) as srv:
            srv.users = {}
            for bad in (0o644, 0o640, 0o604, 0o620):
                with self.subTest(mode=oct(bad)):
                    srv.stop()
                    os.chmod(srv.users_file, bad)
                    srv.start()
                    mode = stat.S_IMODE(os.stat(srv.users_file).st_mode)
                    self.assertEqual(mode, 0o600, oct(mode))
                    self.assertIn("was open to others (mode 0%o)" % bad,
                                  srv.log_text())
            relogin(srv, "alice", "secret").quit()

    def test_u_raises_a_reached_max_users(self):
        # -u is the operator's word: MAX_USERS binds ADD_USER only.
        with Server(users={"alice": "secret"}) as srv:
            srv.stop()
            with open(srv.users_file, "a") as f:
                f.write("max_users=2\n")      # admin and alice
            srv.users = {"bob": "Bob-Pw-9"}
            srv.start()
            self.assertIn("warning: max users raised to 3 to add 'bob'",
                          srv.log_text())
            self.assertIn("max_users=3", users_lines(srv))
            relogin(srv, "bob", "Bob-Pw-9").quit()

    def test_save_through_symlink_keeps_the_link(self):
        # A users file kept elsewhere and linked (/etc -> /var/lib) is
        # updated where it lives; the link is not replaced by a file.
        with Server(users={"alice": "secret"}) as srv:
            srv.stop()
            real = os.path.join(srv.tmp, "lib", "users.real")
            os.mkdir(os.path.dirname(real))
            os.rename(srv.users_file, real)
            os.symlink(real, srv.users_file)
            srv.users = {"bob": "Linked-Pw-7"}
            srv.start()
            self.assertTrue(os.path.islink(srv.users_file))
            with open(real) as f:
                self.assertIn("\nbob:$6$", f.read())
            self.assertEqual(stat.S_IMODE(os.stat(real).st_mode), 0o600)
            relogin(srv, "bob", "Linked-Pw-7").quit()

    def test_first_save_through_dangling_relative_symlinks(self):
        # A fresh install: the links are made before the file they name
        # (users -> lib/link2 -> users.real, each relative to its folder).
        with Server(users={"alice": "secret"}) as srv:
            srv.stop()
            os.unlink(srv.users_file)
            os.mkdir(os.path.join(srv.tmp, "lib"))
            os.symlink("lib/link2", srv.users_file)
            os.symlink("users.real", os.path.join(srv.tmp, "lib", "link2"))
            srv.users = {"bob": "Linked-Pw-8"}
            srv.start()
            self.assertTrue(os.path.islink(srv.users_file))
            self.assertTrue(os.path.islink(os.path.join(srv.tmp, "lib",
                                                        "link2")))
            with open(os.path.join(srv.tmp, "lib", "users.real")) as f:
                self.assertIn("\nbob:$6$", f.read())
            relogin(srv, "bob", "Linked-Pw-8").quit()

    def test_u_persisted_hashed_and_survives_restart(self):
        pw = "Persist-Me-42"
        with Server(users={"alice": pw}) as srv:
            lines = users_lines(srv)
            alice = [l for l in lines if l.startswith("alice:")]
            self.assertEqual(len(alice), 1, lines)
            self.assertTrue(alice[0].startswith("alice:$6$"), alice)
            with open(srv.users_file) as f:
                self.assertNotIn(pw, f.read())
            mode = stat.S_IMODE(os.stat(srv.users_file).st_mode)
            self.assertEqual(mode, 0o600, oct(mode))
            srv.stop()
            srv.users = {}
            srv.start()
            c = relogin(srv, "alice", pw)
            c.quit()
            # -u on an existing user sets its password
            srv.stop()
            srv.users = {"alice": "Changed-43"}
            srv.start()
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS " + pw).startswith("-ERR"))
            c.close()
            c = relogin(srv, "alice", "Changed-43")
            c.quit()


if __name__ == "__main__":
    unittest.main()
