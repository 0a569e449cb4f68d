"""MGMT AUTH_MGMT state: greeting, USER/PASS, who may log in, the failed
PASS delay (a timer, not a sleep) and limit, QUIT in both states, ACTIVE
commands refused before login."""
import threading
import time
import unittest

from mgmtlib import (ADMIN_PW, GREETING, FAIL_DELAY_MIN, MgmtServer, Mgmt,
                     SharedServerTest, recv_within)


class AuthState(SharedServerTest):
    """Cheap AUTH_MGMT checks on one shared server (each test opens its
    own MGMT connection)."""

    SERVER = MgmtServer
    SERVER_KW = {}

    def setUp(self):
        self.m = Mgmt(self.srv.mgmt_port)

    def tearDown(self):
        self.m.close()

    def test_greeting(self):
        self.assertEqual(self.m.line(), (GREETING + "\r\n").encode())

    def test_user_pass_admin(self):
        self.m.text()
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        self.assertEqual(self.m.ask("PASS " + ADMIN_PW), "+OK PASS")
        self.assertEqual(self.m.ask("NOOP"), "+OK NOOP")

    def test_command_names_case_insensitive(self):
        self.m.text()
        self.assertEqual(self.m.ask("user admin"), "+OK USER")
        self.assertEqual(self.m.ask("Pass " + ADMIN_PW), "+OK PASS")
        self.assertEqual(self.m.ask("nOoP"), "+OK NOOP")

    def test_user_of_non_admin_is_refused(self):
        self.m.text()
        for name in ("alice", "bob", "nobody", "administrator", "admin2",
                     "admi"):
            r = self.m.ask("USER " + name)
            self.assertTrue(r.startswith("-ERR"), (name, r))
        # the session goes on
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")

    def test_user_of_non_admin_is_logged(self):
        # a guessed administrator name shows in the log, made printable
        self.m.text()
        port = self.m.sock.getsockname()[1]
        self.assertTrue(self.m.ask("USER root\x01x").startswith("-ERR"))
        self.assertTrue(self.srv.wait_log(
            r"mgmt\[\d+\] 127\.0\.0\.1:%d user=root\?x "
            r"login-failed not-admin$" % port), self.srv.log_text())

    def test_user_of_non_admin_is_logged_once_a_session(self):
        # USER has no delay: a line for each would let a client fill
        # the disk, so a session logs its first wrong name only
        self.m.text()
        port = self.m.sock.getsockname()[1]
        for i in range(50):
            self.assertTrue(self.m.ask("USER root%d" % i).startswith("-ERR"))
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        lines = [l for l in self.srv.log_text().splitlines()
                 if ":%d user=" % port in l and "not-admin" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].endswith("user=root0 login-failed "
                                          "not-admin"), lines)

    def test_user_name_is_case_sensitive(self):
        self.m.text()
        r = self.m.ask("USER ADMIN")
        self.assertTrue(r.startswith("-ERR"), r)

    def test_ordinary_user_cannot_log_in_with_own_password(self):
        # alice is a POP3 user with password "secret": no MGMT session.
        self.m.text()
        r = self.m.ask("USER alice")
        self.assertTrue(r.startswith("-ERR"), r)
        r = self.m.ask("PASS secret")
        self.assertTrue(r.startswith("-ERR"), r)
        r = self.m.ask("STATUS")
        self.assertTrue(r.startswith("-ERR"), r)

    def test_quit_in_auth_state(self):
        self.m.text()
        self.assertEqual(self.m.ask("QUIT"), "+OK GOODBYE")
        self.assertTrue(self.m.closed(3), "QUIT did not close")

    def test_quit_in_active_state(self):
        self.m.login()
        self.assertEqual(self.m.ask("QUIT"), "+OK GOODBYE")
        self.assertTrue(self.m.closed(3), "QUIT did not close")

    def test_quit_lower_case(self):
        self.m.login()
        self.assertEqual(self.m.ask("quit"), "+OK GOODBYE")
        self.assertTrue(self.m.closed(3), "QUIT did not close")

    def test_active_commands_refused_before_login(self):
        self.m.text()
        for cmd in ("NOOP", "CAPA", "STATUS", "HISTORIC_CONNEC",
                    "LIVE_CONNEC", "BYTES_TRANS", "USERS", "MAX_USERS 5",
                    "MAX_CONNEC 5", "IDLE_TIMEOUT 60", "TIMEOUT 5",
                    "DELETE_USER bob", "ADD_USER zed zedpw",
                    "RESET_USER_PASSWORD alice",
                    "CHANGE_PASSWORD %s other" % ADMIN_PW):
            with self.subTest(cmd=cmd):
                r = self.m.ask(cmd)
                self.assertTrue(r.startswith("-ERR"), r)
        # single-line -ERR each: the session goes on in step
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        self.assertEqual(self.m.ask("PASS " + ADMIN_PW), "+OK PASS")
        # and none of them had an effect
        st = self.m.status()
        self.assertEqual(st["TOTAL USERS"], 3)
        self.assertNotEqual(st["MAX USERS"], 5)
        self.assertNotEqual(st["MAX CONNECTIONS"], 5)
        self.assertNotEqual(st["IDLE TIMEOUT"], 60)
        users = self.m.ok("USERS")
        self.assertIn("bob", users)
        self.assertNotIn("zed", users)

    def test_user_and_pass_refused_when_active(self):
        self.m.login()
        for cmd in ("USER admin", "PASS " + ADMIN_PW):
            r = self.m.ask(cmd)
            self.assertTrue(r.startswith("-ERR"), (cmd, r))
        self.assertTrue(self.m.alive())

    def test_unknown_command_in_auth_state(self):
        self.m.text()
        self.assertEqual(self.m.ask("HELLO there"), "-ERR UNKNOWN COMMAND")
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")

    def test_user_without_name(self):
        self.m.text()
        r = self.m.ask("USER")
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")


class FailedPass(unittest.TestCase):
    """Failed PASS: delayed about 1 s by a timer, forgets the user, three
    failures close the session.  One server per test: the failures are
    per session but nothing should be shared with other tests."""

    def setUp(self):
        self.srv = MgmtServer().__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.m = Mgmt(self.srv.mgmt_port)
        self.m.text()

    def tearDown(self):
        self.m.close()

    def timed(self, command):
        t0 = time.monotonic()
        r = self.m.ask(command)
        return r, time.monotonic() - t0

    def test_wrong_password_answered_after_delay(self):
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        r, dt = self.timed("PASS wrong-" + ADMIN_PW)
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertGreaterEqual(dt, FAIL_DELAY_MIN)
        self.assertLess(dt, 3.0)
        # the session goes on after one failure
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        self.assertEqual(self.m.ask("PASS " + ADMIN_PW), "+OK PASS")

    def test_password_is_case_sensitive(self):
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        r, dt = self.timed("PASS " + ADMIN_PW.upper())
        self.assertTrue(r.startswith("-ERR"), r)

    def test_failed_pass_forgets_user(self):
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        r = self.m.ask("PASS wrong")
        self.assertTrue(r.startswith("-ERR"), r)
        # the right password now, but USER was forgotten
        r, dt = self.timed("PASS " + ADMIN_PW)
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertGreaterEqual(dt, FAIL_DELAY_MIN)

    def test_pass_without_user_is_a_delayed_failure(self):
        r, dt = self.timed("PASS " + ADMIN_PW)
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertGreaterEqual(dt, FAIL_DELAY_MIN)
        self.assertEqual(self.m.ask("STATUS")[:4], "-ERR")

    def test_pass_without_user_counts_towards_three(self):
        r = self.m.ask("PASS " + ADMIN_PW)             # failure 1
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        r = self.m.ask("PASS bad")                     # failure 2
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        r = self.m.ask("PASS bad")                     # failure 3
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertTrue(self.m.closed(3),
                        "not closed after the third failure")

    def test_three_failures_close_the_session(self):
        for i in range(2):
            self.assertEqual(self.m.ask("USER admin"), "+OK USER")
            r = self.m.ask("PASS bad%d" % i)
            self.assertTrue(r.startswith("-ERR"), r)
        # still open after two
        self.assertEqual(self.m.ask("USER admin"), "+OK USER")
        r = self.m.ask("PASS bad2")
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertTrue(self.m.closed(3),
                        "not closed after the third failure")

    def test_delay_does_not_block_other_sessions(self):
        other = self.srv.mgmt()
        try:
            self.assertEqual(self.m.ask("USER admin"), "+OK USER")
            self.m.send("PASS wrong\r\n")
            # while the failure is held back, the server answers others
            t0 = time.monotonic()
            st = other.status()
            dt = time.monotonic() - t0
            self.assertIn("UPTIME", st)
            self.assertLess(dt, 0.5, "STATUS took %.2fs during the delay"
                            % dt)
            # and no reply has come yet for the failed PASS
            self.assertIsNone(recv_within(self.m, 0.3))
            self.assertTrue(self.m.text().startswith("-ERR"))
        finally:
            other.close()

    def test_delayed_failures_in_parallel(self):
        """Two sessions failing at once both answer after ~1 s, not one
        after the other (a timer per session, not a sleep)."""
        other = Mgmt(self.srv.mgmt_port)
        try:
            other.text()
            out = {}

            def fail(name, m):
                m.ask("USER admin")
                t0 = time.monotonic()
                out[name] = (m.ask("PASS nope"), time.monotonic() - t0)

            ts = [threading.Thread(target=fail, args=("a", self.m)),
                  threading.Thread(target=fail, args=("b", other))]
            t0 = time.monotonic()
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
            total = time.monotonic() - t0
            for name in ("a", "b"):
                self.assertTrue(out[name][0].startswith("-ERR"), out)
                self.assertGreaterEqual(out[name][1], FAIL_DELAY_MIN)
            self.assertLess(total, 1.8, "failures were answered in turn")
        finally:
            other.close()


class PasswordQueue(unittest.TestCase):
    """MGMT PASS goes through the same password-check queue as POP3
    logins (answered by the reactor loop, a bounded share per pass)."""

    def test_pipelined_login_and_commands_keep_their_order(self):
        with MgmtServer() as srv:
            m = Mgmt(srv.mgmt_port)
            m.send("USER admin\r\nPASS %s\r\nNOOP\r\nQUIT\r\n" % ADMIN_PW)
            self.assertEqual([m.text() for _ in range(5)],
                             [GREETING, "+OK USER", "+OK PASS", "+OK NOOP",
                              "+OK GOODBYE"])
            self.assertTrue(m.closed(3))
            m.close()

    def test_burst_of_admin_and_pop3_logins(self):
        """Forty MGMT logins, right and wrong passwords, and forty POP3
        logins sent at once: every one gets its own right answer."""
        with MgmtServer() as srv:
            mgmts = [Mgmt(srv.mgmt_port) for _ in range(40)]
            pops = [srv.client() for _ in range(40)]
            for i, m in enumerate(mgmts):
                pw = ADMIN_PW if i % 2 == 0 else "wrong-%d" % i
                m.send("USER admin\r\nPASS %s\r\nNOOP\r\n" % pw)
            for c in pops:
                c.send("USER alice\r\nPASS secret\r\nQUIT\r\n")
            for i, m in enumerate(mgmts):
                got = [m.text() for _ in range(4)]
                if i % 2 == 0:
                    self.assertEqual(got, [GREETING, "+OK USER", "+OK PASS",
                                           "+OK NOOP"], i)
                else:
                    self.assertEqual(got, [GREETING, "+OK USER",
                                           "-ERR WRONG PASSWORD",
                                           "-ERR NOT AUTHENTICATED"], i)
                m.close()
            logged_in = 0
            for c in pops:
                got = [c.line().decode() for _ in range(4)]
                # One maildrop, one session at a time: the rest are IN-USE.
                self.assertTrue(got[2].startswith("+OK maildrop") or
                                got[2].startswith("-ERR [IN-USE]"), got)
                logged_in += got[2].startswith("+OK maildrop")
                c.close()
            self.assertGreaterEqual(logged_in, 1)

    def test_session_gone_while_its_pass_waits(self):
        with MgmtServer() as srv:
            for _ in range(20):
                m = Mgmt(srv.mgmt_port)
                m.send("USER admin\r\nPASS %s\r\n" % ADMIN_PW)
                m.close()
            m = srv.mgmt()
            self.assertTrue(m.alive())
            m.close()
            self.assertIsNone(srv.sanitizer_report())


if __name__ == "__main__":
    unittest.main()
