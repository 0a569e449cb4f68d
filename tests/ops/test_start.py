"""Start-up failures as a service manager sees them (pop3server(8) EXIT
STATUS, docs/examples/pop3server.service): a host name given to -l that
the resolver cannot answer yet (DNS not up at boot) is a run-time
failure, status 1, which Restart=on-failure retries, not the status 2 of
a bad command line, which RestartPreventExitStatus=2 leaves alone.  A
saved %filter line with a blank at either end stops the start with
status 1 and names the users file (docs/operations.md, troubleshooting),
before anything is written.  Once serving, a -u password is no longer
on the command line that ps and /proc show to every local user.
Descriptors 0-2 a parent left closed are /dev/null, not a socket's."""
import os
import unittest

from opslib import (SERVER_BIN, Server, free_port, need, need_root,
                    read_text, run, tmpdir, wait_for)


class Resolver(unittest.TestCase):

    def setUp(self):
        need_root(self)     # unshare -n needs CAP_SYS_ADMIN
        self.unshare = need("unshare")
        tmp = tmpdir(self)
        self.mail = os.path.join(tmp, "mail")
        os.mkdir(self.mail)
        self.users = os.path.join(tmp, "users")

    def start(self, address):
        cmd = [SERVER_BIN, "--allow-root", "-l", address,
               "-p", str(free_port()), "-P", str(free_port()),
               "-d", self.mail, "-U", self.users]
        # A network namespace of its own has no route to any resolver.
        return run([self.unshare, "-n"] + cmd)

    def test_resolver_unreachable_is_status_1(self):
        r = self.start("pop3-test.example")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("-l: cannot resolve 'pop3-test.example' now",
                      r.stderr)
        self.assertFalse(os.path.exists(self.users), "users file written")


class SavedFilter(unittest.TestCase):

    def setUp(self):
        tmp = tmpdir(self)
        self.mail = os.path.join(tmp, "mail")
        os.mkdir(self.mail)
        self.users = os.path.join(tmp, "users")

    def start(self, text):
        """Starts the server on a users file holding text; a refused
        start exits at once, one still running after 10 s is killed and
        fails the test."""
        with open(self.users, "w") as f:
            f.write(text)
        return run([SERVER_BIN, "--allow-root", "-l", "127.0.0.1",
                    "-p", str(free_port()), "-L", "127.0.0.1",
                    "-P", str(free_port()), "-d", self.mail,
                    "-U", self.users], timeout=10)

    def test_blank_at_either_end_is_status_1(self):
        # Written by hand ("%filter  cat": two spaces after the key) or
        # by an older version ("- " for a removal, which the shell runs
        # as an option), never by MGMT FILTER, which trims blanks at both
        # ends.  Refused before an administrator is created, so the file
        # is left as it was.
        fine = "alice:$6$abcdefghijklmnop$" + "x" * 86 + "\n"
        for bad in ("%filter  cat", "%filter \tcat", "%filter cat\t",
                    "%filter cat "):
            with self.subTest(line=bad):
                r = self.start(fine + bad + "\n")
                self.assertEqual(r.rc, 1, r)
                self.assertIn("pop3server: %s: the %%filter line's command "
                              "must be one line" % self.users, r.stderr)
                self.assertIn("neither starts nor ends with a space or tab",
                              r.stderr)
                with open(self.users) as f:
                    self.assertEqual(f.read(), fine + bad + "\n")


class CommandLine(unittest.TestCase):

    def test_u_password_wiped_from_the_command_line(self):
        # /proc/PID/cmdline (what ps shows) is readable by every local
        # user: the password of -u is cleared once it has been hashed.
        # The greeting comes after that, so the server answering is
        # enough to look.
        with Server(users={"alice": "Secr3t-x"}) as s:
            with open("/proc/%d/cmdline" % s.pid, "rb") as f:
                argv = f.read()
            self.assertIn(b"alice", argv)
            self.assertNotIn(b"Secr3t-x", argv)
            c = s.client()
            try:
                c.login("alice", "Secr3t-x")        # it was applied
                c.quit()
            finally:
                c.close()


def close_std_fds():
    """In the child, before exec: a parent that left 0, 1 and 2 closed
    (a careless init script, `cmd <&- >&- 2>&-`)."""
    for fd in (0, 1, 2):
        os.close(fd)


class StandardDescriptors(unittest.TestCase):

    def test_closed_std_fds_become_dev_null(self):
        # Left closed, 0-2 would go to the first sockets, and a log line
        # meant for standard error would be written into a connection.
        log = os.path.join(tmpdir(self), "server.log")
        with Server(args=["--log", log], preexec_fn=close_std_fds) as s:
            for fd in (0, 1, 2):
                self.assertEqual(os.readlink("/proc/%d/fd/%d" % (s.pid, fd)),
                                 "/dev/null", "descriptor %d" % fd)
            c = s.client()
            try:
                c.login()
                self.assertTrue(c.quit().startswith("+OK"))
            finally:
                c.close()
            self.assertTrue(wait_for(lambda: " user=alice logout "
                                     in read_text(log)), read_text(log))

