"""MAX_USERS, MAX_CONNEC, IDLE_TIMEOUT and TIMEOUT arguments; what
MAX_CONNEC and IDLE_TIMEOUT do to POP3; settings saved before the +OK and
kept across restarts, winning over -T/-m."""
import os
import resource
import signal
import time
import unittest

from mgmtlib import (MgmtServer, SharedServerTest, users_file_mode,
                     users_file_text, wait_figure)


class SettingArguments(SharedServerTest):
    """Accepted and refused values, on one shared server."""

    SERVER = MgmtServer
    SERVER_KW = dict(idle=30)

    def setUp(self):
        self.m = self.srv.mgmt()

    def tearDown(self):
        self.m.close()

    def refused(self, cmd, reply, key, before):
        r = self.m.ask(cmd)
        self.assertEqual(r, reply, cmd)
        self.assertEqual(self.m.status()[key], before, cmd)
        self.assertTrue(self.m.alive())

    def test_max_connec_invalid(self):
        before = self.m.status()["MAX CONNECTIONS"]
        for v in ("0", "-1", "abc", "100000000", "99999999999999999999999",
                  "1.5", "+5", "0x10", "5a", ""):
            with self.subTest(v=v):
                if v == "":
                    r = self.m.ask("MAX_CONNEC")
                    self.assertTrue(r.startswith("-ERR"), r)
                    continue
                self.refused("MAX_CONNEC " + v,
                             "-ERR INVALID MAX CONNECTIONS",
                             "MAX CONNECTIONS", before)

    def test_max_connec_valid(self):
        for v in (1000, 1, 250):
            with self.subTest(v=v):
                self.assertEqual(self.m.run("MAX_CONNEC %d" % v),
                                 ("+OK MAX_CONNEC CHANGED", None))
                self.assertEqual(self.m.status()["MAX CONNECTIONS"], v)
                self.assertTrue(self.m.alive())

    def test_idle_timeout_invalid(self):
        before = self.m.status()["IDLE TIMEOUT"]
        for v in ("9", "86401", "0", "-10", "abc", "60s", "1e3",
                  "18446744073709551626"):
            with self.subTest(v=v):
                self.refused("IDLE_TIMEOUT " + v, "-ERR INVALID IDLE TIMEOUT",
                             "IDLE TIMEOUT", before)

    def test_idle_timeout_bounds_accepted(self):
        for v in (10, 86400, 600):
            with self.subTest(v=v):
                self.assertEqual(self.m.run("IDLE_TIMEOUT %d" % v),
                                 ("+OK IDLE_TIMEOUT CHANGED", None))
                self.assertEqual(self.m.status()["IDLE TIMEOUT"], v)

    def test_timeout_invalid(self):
        for v in ("0", "3601", "-1", "abc", "2.5", "99999999999999999999"):
            with self.subTest(v=v):
                t0 = time.monotonic()
                self.assertEqual(self.m.ask("TIMEOUT " + v),
                                 "-ERR INVALID TIMEOUT")
                self.assertLess(time.monotonic() - t0, 0.5)
                self.assertTrue(self.m.alive())
        # no pause started: POP3 still greets at once
        c = self.srv.client(timeout=1.0)
        try:
            self.assertTrue(c.greeting().startswith("+OK"))
        finally:
            c.close()

    def test_max_users_invalid(self):
        before = self.m.status()["MAX USERS"]
        count = self.m.status()["TOTAL USERS"]
        for v in ("0", "-1", "abc", str(count - 1), "1", "3.0", ""):
            with self.subTest(v=v):
                if v == "":
                    r = self.m.ask("MAX_USERS")
                    self.assertTrue(r.startswith("-ERR"), r)
                    continue
                self.refused("MAX_USERS " + v, "-ERR INVALID MAX USERS",
                             "MAX USERS", before)

    def test_max_users_valid(self):
        count = self.m.status()["TOTAL USERS"]
        for v in (count + 5, count, 2000):
            with self.subTest(v=v):
                first, body = self.m.run("MAX_USERS %d" % v)
                self.assertEqual(first, "+OK MAX_USERS")
                self.assertEqual(body, ["MAX USERS CHANGED SUCCESSFULLY"])
                self.assertEqual(self.m.status()["MAX USERS"], v)
                # every live setting change is in the log, this one too
                self.assertTrue(self.srv.wait_log(r"mgmt\[\d+\] max users "
                                                  r"now %d$" % v))


class LowDescriptorLimit(unittest.TestCase):
    def test_max_connec_ceiling_is_at_least_1000(self):
        # With 64 descriptors the start allows far fewer than 1,000, but
        # the ceiling MAX_CONNEC checks is never below 1,000; beyond the
        # descriptors a connection is refused cleanly, not crashed on.
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        with MgmtServer(preexec_fn=limit) as srv:
            m = srv.mgmt()
            self.addCleanup(m.close)
            self.assertLess(m.status()["MAX CONNECTIONS"], 64)
            self.assertEqual(m.ask("MAX_CONNEC 1000"),
                             "+OK MAX_CONNEC CHANGED")
            self.assertEqual(m.status()["MAX CONNECTIONS"], 1000)
            self.assertEqual(m.ask("MAX_CONNEC 1001"),
                             "-ERR INVALID MAX CONNECTIONS")
            clients = [srv.client(timeout=5.0) for _ in range(80)]
            try:
                greetings = [c.line() for c in clients]
                self.assertIn(b"+OK", greetings[0])
                for g in greetings:
                    self.assertTrue(g.startswith((b"+OK", b"-ERR")), g)
            finally:
                for c in clients:
                    c.close()
            self.assertIsNone(srv.proc.poll(), "server died")
            self.assertTrue(m.alive())


class MaxUsersLimit(unittest.TestCase):
    def test_add_user_at_the_max(self):
        with MgmtServer() as srv:
            m = srv.mgmt()
            self.assertEqual(m.status()["TOTAL USERS"], 3)
            self.assertEqual(m.run("MAX_USERS 2")[0],
                             "-ERR INVALID MAX USERS")
            self.assertEqual(m.run("MAX_USERS 3")[0], "+OK MAX_USERS")
            self.assertEqual(m.ask("ADD_USER carol carolpw"),
                             "-ERR MAX USERS REACHED")
            self.assertNotIn("carol", m.ok("USERS"))
            self.assertNotIn("carol:", users_file_text(srv))
            self.assertEqual(m.status()["TOTAL USERS"], 3)
            # one more slot: the same ADD_USER works
            self.assertEqual(m.run("MAX_USERS 4")[0], "+OK MAX_USERS")
            self.assertEqual(m.run("ADD_USER carol carolpw")[0],
                             "+OK ADD_USER")
            self.assertEqual(m.ask("ADD_USER dave davepw"),
                             "-ERR MAX USERS REACHED")
            m.close()


class MaxConnections(unittest.TestCase):
    def setUp(self):
        self.srv = MgmtServer().__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.m = self.srv.mgmt()
        self.pop = []
        # the harness's readiness probe may still be counted
        self.assertEqual(wait_figure(self.m, "LIVE CONNECTIONS", 0), 0)

    def tearDown(self):
        for c in self.pop:
            c.close()
        self.m.close()

    def open(self, user=None):
        c = self.srv.client(timeout=5.0)
        self.pop.append(c)
        if user:
            c.login(user, self.srv.users[user])
        return c

    def assert_refused(self, c):
        g = c.line().decode("latin-1")
        self.assertEqual(g, "-ERR [SYS/TEMP] too many connections\r\n")
        self.assertTrue(c.closed(3), "refused connection left open")

    def test_third_connection_refused_existing_untouched(self):
        self.assertEqual(self.m.ask("MAX_CONNEC 2"), "+OK MAX_CONNEC CHANGED")
        a = self.open("alice")
        b = self.open()
        self.assertTrue(b.greeting().startswith("+OK"))
        h0 = self.m.status()["HISTORIC CONNECTIONS"]
        third = self.open()
        self.assert_refused(third)
        # existing sessions go on
        self.assertTrue(a.cmd("STAT").startswith("+OK"))
        self.assertTrue(a.cmd("NOOP").startswith("+OK"))
        self.assertTrue(b.cmd("USER bob").startswith("+OK"))
        self.assertTrue(b.cmd("PASS hunter2").startswith("+OK"))
        st = self.m.status()
        self.assertEqual(st["LIVE CONNECTIONS"], 2)
        # the refused connection counts in HISTORIC CONNECTIONS
        self.assertEqual(st["HISTORIC CONNECTIONS"], h0 + 1)

    def test_refusal_line_counts_in_bytes_sent(self):
        """The refusal is written to a POP3 client socket, so its octets
        count in BYTES SENT like any other (and nothing is received)."""
        self.assertEqual(self.m.ask("MAX_CONNEC 1"), "+OK MAX_CONNEC CHANGED")
        a = self.open()
        self.assertTrue(a.greeting().startswith("+OK"))
        st0 = self.m.status()
        self.assert_refused(self.open())
        st1 = self.m.status()
        self.assertEqual(st1["BYTES SENT"] - st0["BYTES SENT"],
                         len(b"-ERR [SYS/TEMP] too many connections\r\n"))
        self.assertEqual(st1["BYTES RECEIVED"], st0["BYTES RECEIVED"])

    def test_client_that_spoke_first_gets_a_clean_close(self):
        """A client that wrote before its greeting reads the refusal and
        then an orderly end of stream, not a reset: closing over unread
        input would send one, which can destroy the refusal line."""
        self.assertEqual(self.m.ask("MAX_CONNEC 1"), "+OK MAX_CONNEC CHANGED")
        self.assertTrue(self.open().greeting().startswith("+OK"))
        pauser = self.srv.mgmt()
        self.addCleanup(pauser.close)
        st0 = self.m.status()
        # While POP3 is paused, the client waits in the backlog, so its
        # line is surely there when the server accepts and refuses it.
        pauser.send("TIMEOUT 1\r\n")
        self.m.ask("NOOP")
        self.m.ask("NOOP")
        c = self.open()
        c.sock.sendall(b"CAPA\r\n")
        self.assertEqual(pauser.text(), "+OK TIMEOUT COMPLETED")
        c.sock.settimeout(5)
        got = b""
        while True:
            chunk = c.sock.recv(4096)  # a reset raises, failing the test
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, b"-ERR [SYS/TEMP] too many connections\r\n")
        st1 = self.m.status()
        self.assertEqual(st1["BYTES RECEIVED"] - st0["BYTES RECEIVED"], 6)

    def test_slot_freed_when_a_session_ends(self):
        self.assertEqual(self.m.ask("MAX_CONNEC 2"), "+OK MAX_CONNEC CHANGED")
        a = self.open("alice")
        self.open("bob")
        self.assert_refused(self.open())
        a.quit()
        self.assertEqual(wait_figure(self.m, "LIVE CONNECTIONS", 1), 1)
        c = self.open()
        self.assertTrue(c.greeting().startswith("+OK"))

    def test_lowering_below_live_keeps_open_sessions(self):
        sess = [self.open("alice"), self.open("bob"), self.open()]
        sess[2].greeting()
        self.assertEqual(wait_figure(self.m, "LIVE CONNECTIONS", 3), 3)
        self.assertEqual(self.m.ask("MAX_CONNEC 1"), "+OK MAX_CONNEC CHANGED")
        for c in sess[:2]:
            self.assertTrue(c.cmd("STAT").startswith("+OK"))
        self.assertTrue(sess[2].cmd("USER alice").startswith("+OK"))
        self.assertEqual(self.m.status()["LIVE CONNECTIONS"], 3)
        self.assert_refused(self.open())

    def test_raising_admits_again(self):
        self.assertEqual(self.m.ask("MAX_CONNEC 1"), "+OK MAX_CONNEC CHANGED")
        self.open("alice")
        self.assert_refused(self.open())
        self.assertEqual(self.m.ask("MAX_CONNEC 2"), "+OK MAX_CONNEC CHANGED")
        c = self.open()
        self.assertTrue(c.greeting().startswith("+OK"))


class IdleTimeoutApplies(unittest.TestCase):
    def test_applies_to_open_sessions(self):
        """IDLE_TIMEOUT 10 shortens the timer of a session opened under
        -T 600: it is closed about 10 s after its last command."""
        with MgmtServer(idle=600) as srv:
            c = srv.client(timeout=15)
            c.login("alice", "secret")
            m = srv.mgmt()
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            t0 = time.monotonic()
            self.assertEqual(m.ask("IDLE_TIMEOUT 10"),
                             "+OK IDLE_TIMEOUT CHANGED")
            closed = c.closed(12.5)
            dt = time.monotonic() - t0
            self.assertTrue(closed, "still open %.1fs after IDLE_TIMEOUT 10"
                            % dt)
            self.assertGreaterEqual(dt, 9.0)
            self.assertLessEqual(dt, 12.5)
            # autologout: no UPDATE, and the MGMT session is not affected
            self.assertTrue(m.alive())
            m.close()
            c.close()


class SettingsPersist(unittest.TestCase):
    """Saved before the +OK; kept across restarts; win over -T/-m."""

    def setUp(self):
        self.srv = MgmtServer(idle=30, args=["-m", "40"]).__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)

    def change_and_check_file(self, m, cmd, value, reply):
        before = users_file_text(self.srv)
        r = m.ask(cmd)
        self.assertEqual(r, reply)
        if reply.startswith("+OK MAX_USERS"):
            m.body()
        # right after the +OK: the file already holds the value
        after = users_file_text(self.srv)
        self.assertNotEqual(before, after, cmd)
        self.assertIn(str(value), after, cmd)
        self.assertEqual(users_file_mode(self.srv), 0o600)

    def test_each_setting_written_before_ok(self):
        m = self.srv.mgmt()
        self.change_and_check_file(m, "MAX_USERS 4321", 4321,
                                   "+OK MAX_USERS")
        self.change_and_check_file(m, "MAX_CONNEC 777", 777,
                                   "+OK MAX_CONNEC CHANGED")
        self.change_and_check_file(m, "IDLE_TIMEOUT 12345", 12345,
                                   "+OK IDLE_TIMEOUT CHANGED")
        m.close()

    def test_settings_survive_restart_over_command_line(self):
        m = self.srv.mgmt()
        m.ok("MAX_USERS 50")
        self.assertEqual(m.ask("MAX_CONNEC 7"), "+OK MAX_CONNEC CHANGED")
        self.assertEqual(m.ask("IDLE_TIMEOUT 45"), "+OK IDLE_TIMEOUT CHANGED")
        m.close()
        self.srv.restart()         # still -T 30 -m 40 on the command line
        m = self.srv.mgmt()
        st = m.status()
        m.close()
        self.assertEqual(st["MAX USERS"], 50)
        self.assertEqual(st["MAX CONNECTIONS"], 7)
        self.assertEqual(st["IDLE TIMEOUT"], 45)
        # each override of a value given on the command line is logged
        self.assertTrue(self.srv.wait_log(r"max connections 7 saved by "
                                          r"MGMT overrides -m"))
        self.assertTrue(self.srv.wait_log(r"idle timeout 45s saved by "
                                          r"MGMT overrides -T"))

    def test_saved_idle_timeout_without_t_option_is_no_override(self):
        m = self.srv.mgmt()
        self.assertEqual(m.ask("IDLE_TIMEOUT 45"), "+OK IDLE_TIMEOUT CHANGED")
        m.close()
        self.srv.stop()
        plain = self.srv.command
        self.srv.command = lambda: [a for i, a in enumerate(plain())
                                    if a != "-T" and
                                    (i == 0 or plain()[i - 1] != "-T")]
        self.srv.start()
        m = self.srv.mgmt()
        self.assertEqual(m.status()["IDLE TIMEOUT"], 45)
        m.close()
        self.assertNotIn("saved by MGMT overrides", self.srv.log_text())

    def test_settings_survive_sigkill(self):
        """Nothing is left to a clean shutdown: killed at once after the
        +OK, the server comes back with the change."""
        m = self.srv.mgmt()
        self.assertEqual(m.ask("IDLE_TIMEOUT 321"), "+OK IDLE_TIMEOUT CHANGED")
        self.srv.restart(sig=signal.SIGKILL)
        m.close()
        m = self.srv.mgmt()
        self.assertEqual(m.status()["IDLE TIMEOUT"], 321)
        m.close()

    def test_restored_max_connec_is_enforced(self):
        m = self.srv.mgmt()
        self.assertEqual(m.ask("MAX_CONNEC 1"), "+OK MAX_CONNEC CHANGED")
        m.close()
        self.srv.restart()
        m = self.srv.mgmt()
        self.assertEqual(wait_figure(m, "LIVE CONNECTIONS", 0), 0)
        a = self.srv.client(timeout=5)
        b = self.srv.client(timeout=5)
        try:
            self.assertTrue(a.greeting().startswith("+OK"))
            g = b.line().decode("latin-1")
            self.assertTrue(g.startswith("-ERR"), g)
        finally:
            a.close()
            b.close()
            m.close()

    def test_no_temporary_file_left(self):
        m = self.srv.mgmt()
        before = set(os.listdir(self.srv.tmp))
        m.ok("MAX_USERS 99")
        m.ask("MAX_CONNEC 9")
        m.ask("IDLE_TIMEOUT 99")
        m.ok("ADD_USER tmpcheck pw12345")
        m.close()
        self.assertEqual(set(os.listdir(self.srv.tmp)), before)


if __name__ == "__main__":
    unittest.main()
