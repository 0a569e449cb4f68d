"""--log FILE and SIGHUP (docs/operations.md 4, pop3server(8) SIGNALS):
SIGHUP closes and reopens the log file, which is what logrotate needs:
after a rename, new lines go to a new FILE (mode 0600) and never to the
renamed one, which keeps the older lines; a session open across the
signal is not dropped; a reopen that fails keeps the old file and says
so (on standard error too), and a FIFO at the path never blocks it;
reopening closes the old descriptor; the file is always appended to,
at start and after SIGHUP, never written over from its beginning;
without --log the signal is harmless.  A user name or a message file
name with a space is logged with '?' in its place, so every line keeps
the fields the recipes split on; so is DEL, and a name cut to fit ends
with '?'.  A line the file takes only in part is taken back, never
glued to the next.  Standard error as a pipe nobody reads never stops
the server.  The "who read what, when" recipes of
docs/operations.md 6 give the right answers on a real log."""
import base64
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

from opslib import ROOT, Server, read_text, run, tmpdir, wait_for
from pop3test import wait_port


def session(srv):
    """One complete POP3 session (login, QUIT); returns its client port,
    which names it in the log ("pop3[N] 127.0.0.1:PORT ...").  (Session
    numbers are no good: the harness's readiness probe is a session too.)"""
    c = srv.client()
    port = c.sock.getsockname()[1]
    try:
        c.login("alice", "secret")
        c.quit()
    finally:
        c.close()
    return port


def lines_of(text, port):
    """The log lines of the session whose client port is port."""
    return [l for l in text.splitlines()
            if re.search(r" pop3\[\d+\] 127\.0\.0\.1:%d " % port, l)]


def log_fds(pid, path):
    """The numbers of the server's descriptors open on path."""
    d = "/proc/%d/fd" % pid
    out = set()
    for n in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, n)) == path:
                out.add(int(n))
        except OSError:
            pass
    return out


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def hup_and_wait_reopen(srv, path):
    """SIGHUP, then waits until the server's descriptor on path is
    another one (the reopen opens the new descriptor before it closes
    the old, so its number changes): a successful reopen logs nothing."""
    before = log_fds(srv.pid, path)
    os.kill(srv.pid, signal.SIGHUP)
    return wait_for(lambda: log_fds(srv.pid, path) != before)


def complete(text, port):
    """True when text has the session's connect, login and logout lines."""
    lines = lines_of(text, port)
    return (any(l.endswith(" connect") for l in lines)
            and any(l.endswith(" login") for l in lines)
            and any(" logout " in l for l in lines))


class Reopen(unittest.TestCase):

    def setUp(self):
        self.dir = tmpdir(self, "ops-log-")
        self.log = os.path.join(self.dir, "pop3server.log")
        # umask 0: the mode of a new log file is the server's choice alone.
        self.s = Server(args=["--log", self.log],
                        preexec_fn=lambda: os.umask(0)).__enter__()
        self.addCleanup(self.s.__exit__, None, None, None)

    def hup(self):
        os.kill(self.s.pid, signal.SIGHUP)

    def test_rename_then_sighup_new_file(self):
        p1 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(self.log), p1)),
                        read_text(self.log))
        self.assertEqual(stat.S_IMODE(os.stat(self.log).st_mode), 0o600)
        os.rename(self.log, self.log + ".1")
        self.hup()
        self.assertTrue(wait_for(lambda: os.path.exists(self.log)),
                        "SIGHUP did not create a new log file")
        self.assertEqual(stat.S_IMODE(os.stat(self.log).st_mode), 0o600)
        p2 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(self.log), p2)),
                        "session 2 not in the new file:\n" + read_text(self.log))
        old = read_text(self.log + ".1")
        new = read_text(self.log)
        self.assertTrue(complete(old, p1), "FILE.1 lost session 1:\n" + old)
        self.assertIn(" ready: ", old)
        self.assertEqual(lines_of(old, p2), [], "session 2 written to FILE.1")
        self.assertEqual(lines_of(new, p1), [], "session 1 repeated in FILE")
        # Standard error got nothing of it either.
        self.assertEqual(lines_of(self.s.log_text(), p2), [])

    def test_session_open_across_sighup(self):
        c = self.s.client()
        port = c.sock.getsockname()[1]
        try:
            c.login("alice", "secret")
            os.rename(self.log, self.log + ".1")
            self.hup()
            self.assertTrue(wait_for(lambda: os.path.exists(self.log)))
            self.assertTrue(c.cmd("STAT").startswith("+OK"),
                            "session dropped by SIGHUP")
            c.quit()
        finally:
            c.close()
        self.assertTrue(wait_for(lambda: any(
            " logout " in l for l in lines_of(read_text(self.log), port))),
            read_text(self.log))
        old = lines_of(read_text(self.log + ".1"), port)
        self.assertTrue(old and old[-1].endswith("user=alice login"), old)
        self.assertFalse([l for l in old if " logout " in l], old)

    def test_failed_reopen_keeps_old_file(self):
        os.rename(self.log, self.log + ".1")
        os.mkdir(self.log)          # the path cannot be opened as a file
        self.hup()
        old = self.log + ".1"
        self.assertTrue(wait_for(lambda: "error: cannot reopen the log"
                                 in read_text(old)), read_text(old))
        p1 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(old), p1)),
                        "the server stopped logging:\n" + read_text(old))
        # Fixed, and signalled again: the new file takes over.
        os.rmdir(self.log)
        self.hup()
        self.assertTrue(wait_for(lambda: os.path.isfile(self.log)))
        p2 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(self.log), p2)),
                        read_text(self.log))
        self.assertEqual(lines_of(read_text(old), p2), [])

    def test_fifo_at_path_never_blocks(self):
        # A FIFO nobody reads, made where the log was: opening it for
        # writing would block the whole server.
        os.rename(self.log, self.log + ".1")
        os.mkfifo(self.log)
        self.hup()
        old = self.log + ".1"
        self.assertTrue(wait_for(lambda: "error: cannot reopen the log: "
                                 "not a regular file" in read_text(old)),
                        read_text(old))
        p1 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(old), p1)),
                        "the server stopped serving:\n" + read_text(old))

    def test_refused_reopen_leaks_nothing(self):
        # A FIFO with a reader opens at once, and is refused: what was
        # opened to find that out must be closed, or every SIGHUP costs
        # a descriptor.
        self.assertTrue(wait_for(lambda: re.search(
            r"user=- logout", read_text(self.log))), read_text(self.log))
        base = fd_count(self.s.pid)
        old = self.log + ".1"
        os.rename(self.log, old)
        os.mkfifo(self.log)
        reader = os.open(self.log, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        for i in range(10):
            self.hup()
            self.assertTrue(wait_for(lambda: read_text(old).count(
                "not a regular file") == i + 1), read_text(old))
        self.assertTrue(wait_for(lambda: fd_count(self.s.pid) == base),
                        "%d descriptors after 10 refused reopens, %d "
                        "before" % (fd_count(self.s.pid), base))

    def test_failed_reopen_reaches_standard_error(self):
        # The log's folder removed: the file the server keeps writing to
        # is deleted, so the error must reach standard error (the journal
        # under systemd) too.
        shutil.rmtree(self.dir)
        self.hup()
        self.assertTrue(self.s.wait_log(r"error: cannot reopen the log: "
                                        r"No such file or directory$"),
                        "standard error: " + self.s.log_text())
        self.assertIsNone(self.s.proc.poll())

    def test_repeated_sighup_same_file(self):
        # logrotate with copytruncate, or a reload without rotation: the
        # server reopens the same path and appends, losing nothing.
        p1 = session(self.s)
        for _ in range(5):
            self.hup()
        p2 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(self.log), p2)))
        text = read_text(self.log)
        self.assertTrue(complete(text, p1), text)
        self.assertEqual(text.count(" ready: "), 1, text)
        self.assertIsNone(self.s.proc.poll())

    def test_reopen_closes_the_old_descriptor(self):
        # Every rotation (or reload) must close what it replaces: a leak
        # per SIGHUP runs a long-lived server out of descriptors, and one
        # left on a rotated file keeps its disk space.  No session is open
        # while counting: the readiness probe's has logged its end.
        self.assertTrue(wait_for(lambda: re.search(
            r"user=- logout", read_text(self.log))), read_text(self.log))
        base = fd_count(self.s.pid)
        self.assertEqual(len(log_fds(self.s.pid, self.log)), 1)
        for i in range(20):
            self.assertTrue(hup_and_wait_reopen(self.s, self.log),
                            "SIGHUP %d: the log was not reopened" % (i + 1))
        self.assertTrue(wait_for(lambda: fd_count(self.s.pid) == base),
                        "%d descriptors after 20 SIGHUPs, %d before"
                        % (fd_count(self.s.pid), base))
        self.assertEqual(len(log_fds(self.s.pid, self.log)), 1)
        p1 = session(self.s)
        self.assertTrue(wait_for(lambda: complete(read_text(self.log), p1)),
                        read_text(self.log))


class Append(unittest.TestCase):

    def test_existing_lines_kept_at_start_and_after_sighup(self):
        # A log that already holds lines (the server's last run, another
        # program's): the server appends, at start and after a SIGHUP
        # on the same file (logrotate copytruncate, a reload).  Opened
        # for plain writing, each open would write over the first lines.
        log = os.path.join(tmpdir(self, "ops-log-"), "pop3server.log")
        older = "2026-01-01T00:00:00.000Z info: a line of an earlier run\n"
        with open(log, "w") as f:
            f.write(older)
        with Server(args=["--log", log]) as s:
            p1 = session(s)
            self.assertTrue(wait_for(lambda: complete(read_text(log), p1)),
                            read_text(log))
            first = read_text(log)
            self.assertTrue(first.startswith(older), first[:500])
            self.assertIn(" ready: ", first)
            self.assertTrue(hup_and_wait_reopen(s, log),
                            "the log was not reopened")
            p2 = session(s)
            self.assertTrue(wait_for(lambda: complete(read_text(log), p2)),
                            read_text(log))
            text = read_text(log)
            self.assertTrue(text.startswith(first),
                            "lines written before the SIGHUP were written "
                            "over:\n" + text[:1500])


class Sanitized(unittest.TestCase):
    """Names from outside (what a client sent, a file another program
    named) reach the log with '?' for a space or a control character: a
    space would split one field in two, and the recipes of
    docs/operations.md 6 split lines on spaces."""

    def test_user_name_with_a_space(self):
        # USER takes one word, but AUTH PLAIN's authentication identity
        # may hold anything but NUL.
        with Server() as s:
            c = s.client()
            port = c.sock.getsockname()[1]
            try:
                c.greeting()
                cred = base64.b64encode(b"\0al ice\0wrong").decode()
                self.assertTrue(c.cmd("AUTH PLAIN " + cred)
                                .startswith("-ERR"))
                c.quit()
            finally:
                c.close()
            self.assertTrue(s.wait_log(r" pop3\[\d+\] 127\.0\.0\.1:%d "
                                       r"user=.* logout " % port),
                            s.log_text())
            mine = lines_of(s.log_text(), port)
            self.assertTrue(any(l.endswith(" user=al?ice login-failed")
                                for l in mine), mine)
            logout = [l for l in mine if " logout " in l][0]
            fields = logout.split(" ")
            self.assertEqual(fields[4:6], ["user=al?ice", "logout"], logout)
            for f in fields[6:]:
                self.assertRegex(f, r"^[a-z]+=\S+$", logout)
            self.assertNotIn("al ice", s.log_text())

    def test_file_name_with_a_space(self):
        # A deletion that fails names the file ("N deletions failed (the
        # first, FILE: CAUSE)"); here another program replaced the file,
        # a copy renamed over it, between DELE and QUIT.
        name = "1600000000.M1 x.host:2,"
        with Server() as s:
            path = os.path.join(s.maildir, "alice", "cur", name)
            with open(path, "wb") as f:
                f.write(b"Subject: a name with a space\n\nbody\n")
            os.utime(path, (1600000000, 1600000000))     # message 1
            c = s.client()
            try:
                c.login("alice", "secret")
                first, body = c.multi("RETR 1")
                self.assertTrue(first.startswith("+OK"), first)
                self.assertIn(b"a name with a space", body)
                self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
                copy = os.path.join(s.maildir, "alice", "tmp", "copy")
                with open(copy, "wb") as f:
                    f.write(b"Subject: a name with a space\n\nbody\n")
                os.rename(copy, path)
                self.assertTrue(c.quit().startswith("-ERR [SYS/TEMP]"))
            finally:
                c.close()
            m = s.wait_log(r"user=alice 1 deletions failed \(the first, "
                           r"(.*): a file with its name remains\)$")
            self.assertTrue(m, s.log_text())
            self.assertEqual(m.group(1), "1600000000.M1?x.host:2,")
            self.assertNotIn("M1 x", s.log_text())

    def logout_after_user(self, name):
        """The logout line of a session that sent USER name, then QUIT."""
        with Server() as s:
            c = s.client()
            port = c.sock.getsockname()[1]
            try:
                c.greeting()
                self.assertTrue(c.cmd("USER " + name).startswith("+OK"))
                c.quit()
            finally:
                c.close()
            self.assertTrue(s.wait_log(r" pop3\[\d+\] 127\.0\.0\.1:%d "
                                       r"user=\S* logout " % port),
                            s.log_text())
            return [l for l in lines_of(s.log_text(), port)
                    if " logout " in l][0]

    def test_delete_character_in_user_name(self):
        # DEL (0x7f) is a control character too: raw, it reaches the
        # terminal of whoever reads the log.
        logout = self.logout_after_user("al\x7fice")
        self.assertEqual(logout.split(" ")[4], "user=al?ice", logout)
        self.assertNotIn("\x7f", logout)

    def test_cut_user_name_ends_with_a_question_mark(self):
        # A name longer than the log keeps (64 octets, USER_NAME_MAX) is
        # cut, and its last kept octet becomes '?': cut plainly, 70 'a's
        # would read as "a" * 64, a valid name of another user.
        logout = self.logout_after_user("a" * 70)
        self.assertEqual(logout.split(" ")[4], "user=" + "a" * 63 + "?",
                         logout)


class NoLogFile(unittest.TestCase):

    def test_sighup_without_log_is_harmless(self):
        with Server() as s:
            os.kill(s.pid, signal.SIGHUP)
            p = session(s)
            self.assertTrue(wait_for(lambda: complete(s.log_text(), p)),
                            s.log_text())
            self.assertIsNone(s.proc.poll(), "SIGHUP stopped the server")
            self.assertNotIn("error:", s.log_text())
            self.assertEqual(s.stop(), 0)


class DiscardedLog(unittest.TestCase):

    def test_log_to_dev_null_is_allowed(self):
        # The one device that makes a fine log: it discards, never blocks.
        with Server(args=["--log", "/dev/null"]) as s:
            p = session(s)
            self.assertEqual(lines_of(s.log_text(), p), [])
            os.kill(s.pid, signal.SIGHUP)
            session(s)
            self.assertEqual(s.stop(), 0)


class PipeServer(Server):
    """A server whose standard error is a pipe the test reads (or not),
    as under systemd's journal or `pop3server 2>&1 | logger`."""

    def start(self):
        self._log = open(os.devnull, "ab")
        self.pipe, w = os.pipe()
        os.set_blocking(self.pipe, False)
        self.proc = subprocess.Popen(self.command(),
                                     stdin=subprocess.DEVNULL,
                                     stdout=w, stderr=w)
        os.close(w)
        wait_port(self.host, self.port, proc=self.proc)

    def drain(self):
        """Everything the pipe holds now."""
        out = b""
        while True:
            try:
                chunk = os.read(self.pipe, 65536)
            except BlockingIOError:
                return out
            if not chunk:
                return out
            out += chunk


class StalledLogReader(unittest.TestCase):

    def test_unread_stderr_pipe_never_stops_the_server(self):
        # Nobody reads the pipe: after 64 KiB of log lines a blocking
        # write would stop the whole server.  Lines it cannot take are
        # dropped, counted, and reported once it reads again.
        # The count is exact: each of the 600 sessions and the start's
        # readiness probe (ids 1 to 601) logs a connect and a logout
        # line, read or counted as dropped.
        with PipeServer() as s:
            try:
                for _ in range(600):
                    c = s.client(timeout=5)
                    try:
                        c.greeting()
                        self.assertTrue(c.quit().startswith("+OK"))
                    finally:
                        c.close()
                got = s.drain()
                session(s)
                deadline = time.monotonic() + 5
                while b"lines dropped" not in got and \
                        time.monotonic() < deadline:
                    got += s.drain()
                    time.sleep(0.05)
                text = got.decode("latin-1")
                m = re.search(r"warning: (\d+) log lines dropped: the log "
                              r"reader was too slow", text)
                self.assertIsNotNone(m, text[-2000:])
                read = [ln for ln in text.splitlines()
                        if re.search(r" pop3\[(\d+)\] .* (connect|logout) ",
                                     ln + " ")
                        and int(re.search(r"pop3\[(\d+)\]", ln).group(1))
                        <= 601]
                self.assertEqual(len(read) + int(m.group(1)), 1202,
                                 (len(read), m.group(0)))
            finally:
                os.close(s.pipe)


class CutLine(unittest.TestCase):
    """A line the file system takes only in part (a full disk) is taken
    back: left there, its head would run into the next line, and one
    line per event is what every log parser splits on.  A file size
    limit (RLIMIT_FSIZE, SIGXFSZ ignored) cuts a write short at a byte
    the test chooses; a full tmpfs refused whole lines when tried, so
    FullLogDisk in tests/hardening passes without the take-back."""

    def test_line_cut_short_is_taken_back(self):
        d = tmpdir(self, "ops-log-")
        log = os.path.join(d, "pop3server.log")
        # SIGXFSZ ignored: a write past the limit fails (EFBIG) instead
        # of killing the server.
        def no_sigxfsz():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        with Server(args=["--log", log], preexec_fn=no_sigxfsz) as s:
            p1 = session(s)
            self.assertTrue(wait_for(lambda: complete(read_text(log), p1)),
                            read_text(log))
            # Room for 10 more octets: the next line is cut after them.
            hard = resource.prlimit(s.pid, resource.RLIMIT_FSIZE)[1]
            resource.prlimit(s.pid, resource.RLIMIT_FSIZE,
                             (os.path.getsize(log) + 10, hard))
            session(s)
            resource.prlimit(s.pid, resource.RLIMIT_FSIZE, (hard, hard))
            p3 = session(s)
            self.assertTrue(wait_for(lambda: complete(read_text(log), p3)),
                            read_text(log))
            text = read_text(log)
        self.assertTrue(text.endswith("\n"), text[-500:])
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [a-z]+: "
        for line in text.splitlines():
            self.assertRegex(line, "^" + stamp)
            self.assertEqual(len(re.findall(stamp, line)), 1, line)
        m = re.search(r" warning: (\d+) log lines dropped: ", text)
        self.assertTrue(m and int(m.group(1)) > 0, text[-1500:])


class FullPipeAtStart(unittest.TestCase):

    def test_password_line_kept_and_pipe_left_blocking(self):
        # Standard error is a pipe already full when the server starts
        # (a reader that has not caught up).  The one-time administrator
        # password must still reach it once it is read, and the pipe,
        # shared with whoever started the server, keeps its flags.
        r, w = os.pipe()
        os.set_blocking(w, False)
        try:
            while True:
                os.write(w, b"x" * 4096)
        except BlockingIOError:
            pass
        os.set_blocking(w, True)
        os.set_blocking(r, False)

        class FullPipeServer(Server):
            def start(self):
                # The reader catches up only after the server started.
                self._log = open(os.devnull, "ab")
                self.proc = subprocess.Popen(self.command(),
                                             stdin=subprocess.DEVNULL,
                                             stdout=w, stderr=w)
                time.sleep(0.5)
                self.got = b""
                deadline = time.monotonic() + 10
                while b"created administrator" not in self.got and \
                        time.monotonic() < deadline:
                    try:
                        self.got += os.read(r, 65536)
                    except BlockingIOError:
                        time.sleep(0.05)
                wait_port(self.host, self.port, proc=self.proc)

        try:
            with FullPipeServer() as s:
                self.assertIsNotNone(
                    re.search(rb"created administrator 'admin' with "
                              rb"password: \S+", s.got),
                    "no password line in the %d bytes read" % len(s.got))
                session(s)
                self.assertTrue(os.get_blocking(w),
                                "the server left O_NONBLOCK on the pipe")
        finally:
            os.close(r)
            os.close(w)



def recipe(title):
    """The shell code block that follows the bold title in section 6 of
    docs/operations.md."""
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        doc = f.read()
    at = doc.index("**" + title)
    m = re.compile(r"```sh\n(.*?)```", re.S).search(doc, at)
    return m.group(1)


class Recipes(unittest.TestCase):
    """The "who read what, when" recipes of docs/operations.md 6, run as
    printed (pop3log reading this log) over a real server's log."""

    @classmethod
    def setUpClass(cls):
        # One log for every recipe: the sessions (and a failed login's
        # delay) are made once.
        cls.dir = tempfile.mkdtemp(prefix="ops-recipes-")
        cls.log = os.path.join(cls.dir, "pop3.log")
        with Server(users={"alice": "secret", "bob": "builder"},
                    args=["--log", cls.log]) as srv:
            c = srv.client()
            c.login("alice", "secret")
            cls.alice_size = c.cmd("LIST 1").split()[2]
            assert c.multi("RETR 1")[0].startswith("+OK")
            assert c.cmd("DELE 1").startswith("+OK")
            c.quit()
            c = srv.client()
            c.login("bob", "builder")
            for n in (1, 2):
                assert c.multi("TOP %d 0" % n)[0].startswith("+OK")
            c.quit()
            c = srv.client()
            c.login("alice", "secret")  # reads nothing
            c.quit()
            c = srv.client()
            c.greeting()
            c.cmd("USER alice")
            assert c.cmd("PASS guess").startswith("-ERR [AUTH]")
            c.quit()
            assert wait_for(lambda: read_text(cls.log).count(
                " logout ") >= 4), read_text(cls.log)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def shell(self, code):
        code = code.replace("2026-11", read_text(self.log)[:7])
        r = run(["sh", "-c", "pop3log() { cat '%s'; }\n%s" % (self.log, code)])
        self.assertEqual(r.rc, 0, r)
        return r.stdout.splitlines()

    def test_every_session_that_read_or_deleted(self):
        out = self.shell(recipe("Every session that read or deleted"))
        self.assertEqual(len(out), 2, out)
        alice, bob = out
        self.assertRegex(alice, r" alice +127\.0\.0\.1:\d+ +retr 1 "
                         r"\(%s bytes\)  top 0  dele 1/\d+  quit$"
                         % self.alice_size)
        self.assertRegex(bob, r" bob +127\.0\.0\.1:\d+ +retr 0 \(0 bytes\)"
                         r"  top 2  dele 0/2  quit$")

    def test_totals_per_user_count_headers_only_sessions(self):
        out = self.shell(recipe("Totals per user for a month"))
        self.assertEqual([ln.split() for ln in out], [
            ["alice", "1", "sessions", "1", "messages", self.alice_size,
             "bytes", "0", "tops", "1", "deleted"],
            ["bob", "1", "sessions", "0", "messages", "0", "bytes", "2",
             "tops", "0", "deleted"]])

    def test_everything_about_one_user(self):
        out = self.shell(recipe("Everything about one user"))
        self.assertEqual([ln.split()[5] for ln in out],
                         ["login", "logout", "login", "logout",
                          "login-failed", "logout"], out)
        self.assertTrue(all(" user=alice " in ln for ln in out), out)

    def test_addresses_per_user(self):
        out = self.shell(recipe("From which addresses each user logs in"))
        self.assertEqual([ln.split() for ln in out],
                         [["2", "alice", "127.0.0.1"],
                          ["1", "bob", "127.0.0.1"]])

    def test_failed_logins_per_address(self):
        out = self.shell(recipe("Failed logins per address"))
        self.assertEqual([ln.split() for ln in out], [["1", "127.0.0.1"]])

    def test_sessions_that_deleted_mail(self):
        out = self.shell(recipe("Sessions that deleted mail"))
        self.assertEqual(len(out), 1, out)
        self.assertRegex(out[0], r" user=alice logout retr=1/%s top=0 "
                         r"dele=1/" % self.alice_size)
