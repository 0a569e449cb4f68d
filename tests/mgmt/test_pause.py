"""TIMEOUT: the POP3 service pauses without blocking the process.  The
reply comes when the pause ends; MGMT keeps answering; new POP3
connections wait in the backlog; open sessions are not read, not
dropped, not timed out, and carry on; a RETR in flight completes
byte-exact."""
import os
import time
import unittest

from mgmtlib import ADMIN_PW, MgmtServer, make_maildrop, recv_within, stuff, \
    write_big_message


class Pause(unittest.TestCase):
    PAUSE = 2

    def start(self, **kw):
        self.srv = MgmtServer(**kw).__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.admin = self.srv.mgmt()
        self.addCleanup(self.admin.close)
        self.watch = self.srv.mgmt()
        self.addCleanup(self.watch.close)

    def pause(self, seconds=None):
        """Sends TIMEOUT; returns once the pause is surely in force (two
        round trips on another MGMT session after the command was sent)
        and the time it was sent."""
        t0 = time.monotonic()
        self.admin.send("TIMEOUT %d\r\n" % (seconds or self.PAUSE))
        self.watch.ask("NOOP")
        self.watch.ask("NOOP")
        return t0

    def completed(self, t0, seconds=None):
        r = self.admin.text()
        dt = time.monotonic() - t0
        self.assertEqual(r, "+OK TIMEOUT COMPLETED")
        return dt

    def test_reply_when_the_pause_ends(self):
        self.start()
        t0 = self.pause()
        self.assertIsNone(recv_within(self.admin, self.PAUSE - 0.6),
                          "TIMEOUT answered before the pause ended")
        dt = self.completed(t0)
        self.assertGreaterEqual(dt, self.PAUSE - 0.1)
        self.assertLess(dt, self.PAUSE + 1.5)
        # the MGMT session goes on
        self.assertTrue(self.admin.alive())

    def test_overlapping_pauses_answered_when_the_service_resumes(self):
        """A shorter TIMEOUT sent during a longer pause is answered when
        POP3 really resumes, not after its own duration: a script driven
        by that reply must not go on while POP3 is still frozen."""
        self.start()
        t0 = self.pause(3)
        other = self.srv.mgmt()
        self.addCleanup(other.close)
        other.send("TIMEOUT 1\r\n")
        self.assertIsNone(recv_within(other, 3 - 0.6 - (time.monotonic()
                                                         - t0)),
                          "the short TIMEOUT was answered mid-pause")
        self.assertEqual(other.text(), "+OK TIMEOUT COMPLETED")
        self.assertGreaterEqual(time.monotonic() - t0, 3 - 0.1)
        self.completed(t0)
        self.assertTrue(other.alive())

    def test_mgmt_works_during_the_pause(self):
        self.start()
        t0 = self.pause()
        # an open MGMT session answers at once
        t1 = time.monotonic()
        st = self.watch.status()
        self.assertLess(time.monotonic() - t1, 0.5)
        self.assertIn("UPTIME", st)
        # a new MGMT session is greeted and can log in at once
        t1 = time.monotonic()
        fresh = self.srv.mgmt()
        fresh.status()
        fresh.close()
        self.assertLess(time.monotonic() - t1, 0.5)
        self.assertLess(time.monotonic() - t0, self.PAUSE - 0.3,
                        "too slow to prove anything")
        self.completed(t0)

    def test_new_pop3_connection_waits_then_is_served(self):
        self.start()
        t0 = self.pause()
        c = self.srv.client(timeout=10)
        try:
            self.assertIsNone(recv_within(c, self.PAUSE - 0.7),
                              "greeted during the pause")
            g = c.greeting()
            dt = time.monotonic() - t0
            self.assertTrue(g.startswith("+OK"), g)
            self.assertGreaterEqual(dt, self.PAUSE - 0.1)
            c.cmd("USER alice")
            self.assertTrue(c.cmd("PASS secret").startswith("+OK"))
            self.assertTrue(c.cmd("STAT").startswith("+OK"))
        finally:
            c.close()
        self.completed(t0)

    def test_open_session_not_read_then_carries_on(self):
        self.start()
        c = self.srv.client(timeout=10)
        self.addCleanup(c.close)
        c.login("alice", "secret")
        t0 = self.pause()
        c.send("STAT\r\n")
        cpu0 = self.srv.cpu_seconds()
        self.assertIsNone(recv_within(c, self.PAUSE - 0.7),
                          "answered during the pause")
        # Input waiting on a frozen session must not wake the reactor
        # again and again: a spin burns the whole window.
        spent = self.srv.cpu_seconds() - cpu0
        self.assertLess(spent, 0.5, "server burnt %.2f s of CPU while "
                        "paused with input pending" % spent)
        r = c.line().decode()
        self.assertGreaterEqual(time.monotonic() - t0, self.PAUSE - 0.1)
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(c.cmd("NOOP").startswith("+OK"))
        self.completed(t0)

    def test_delayed_reply_waits_for_the_pause_end(self):
        """A failed login's reply, delayed 1 s, falls due during the
        pause: it comes when the session carries on, not before."""
        self.start()
        c = self.srv.client(timeout=10)
        self.addCleanup(c.close)
        c.line()
        c.send("USER alice\r\nPASS wrong\r\n")
        self.assertTrue(c.line().startswith(b"+OK"))
        t0 = self.pause(3)
        self.assertIsNone(recv_within(c, 3 - 0.7),
                          "a reply sent during the pause")
        r = c.line().decode()
        self.assertTrue(r.startswith("-ERR [AUTH]"), r)
        self.completed(t0)

    def test_pause_does_not_count_against_idle_timer(self):
        """-T 1, pause 2 s: the idle session is still there after the
        pause (the pause never counts against the idle timer)."""
        self.start(idle=1)
        c = self.srv.client(timeout=10)
        self.addCleanup(c.close)
        c.login("alice", "secret")
        t0 = self.pause()
        self.completed(t0)
        r = c.cmd("NOOP")
        self.assertTrue(r.startswith("+OK"), r)
        # and the idle timer still works afterwards
        self.assertTrue(c.closed(4), "-T 1 no longer applies after a pause")

    def test_idle_time_before_the_pause_still_counts(self):
        """-T 3: idle 2 s, then a 2 s pause.  The idle clock stops during
        the pause and goes on after it: about 1 s is left, not a fresh
        3 s (else short pauses would keep idle sessions forever)."""
        self.start(idle=3)
        c = self.srv.client(timeout=10)
        self.addCleanup(c.close)
        c.login("alice", "secret")
        time.sleep(2)
        t0 = self.pause()
        self.completed(t0)
        self.assertIsNone(recv_within(c, 0.4),
                          "the pause ate the idle time that was left")
        self.assertTrue(c.closed(2.2),
                        "the pause restarted the idle timer")
        self.assertIn(b"autologout", c.buf)

    def test_connections_kept_and_counted(self):
        self.start()
        cs = [self.srv.client(timeout=10) for _ in range(3)]
        for c in cs:
            self.addCleanup(c.close)
            c.greeting()
        live = self.watch.status()["LIVE CONNECTIONS"]
        t0 = self.pause()
        self.assertEqual(self.watch.status()["LIVE CONNECTIONS"], live)
        self.completed(t0)
        for c in cs:
            self.assertTrue(c.cmd("USER bob").startswith("+OK"))
        self.assertEqual(self.watch.status()["LIVE CONNECTIONS"], live)

    def test_retr_in_flight_completes(self):
        """TIMEOUT 2 while a 20 MB RETR is in flight: the client gets the
        whole message, byte-exact, and the session goes on."""
        self.start(users={"admin": ADMIN_PW, "big": "bigpw"},
                   mail=None)
        d = make_maildrop(self.srv, "big")
        wire = write_big_message(os.path.join(d, "new", "1800000000.big"),
                                 20 * 1024 * 1024)
        c = self.srv.client(timeout=15)
        self.addCleanup(c.close)
        c.login("big", "bigpw")
        size = int(c.cmd("LIST 1").split()[2])
        self.assertEqual(size, len(wire))
        c.send("RETR 1\r\n")
        first = c.line()
        self.assertTrue(first.startswith(b"+OK"), first)
        # read a little, then stop reading: the RETR is in flight
        got = len(c.buf)
        while got < 256 * 1024:
            chunk = c.sock.recv(65536)
            self.assertTrue(chunk)
            c.buf += chunk
            got = len(c.buf)
        t0 = self.pause()
        body = c.multiline()
        t_done = time.monotonic()
        self.assertEqual(len(body), len(stuff(wire)))
        self.assertTrue(body == stuff(wire), "message corrupted")
        dt = self.completed(t0)
        self.assertGreaterEqual(dt, self.PAUSE - 0.1)
        # 20 MB cannot sit in socket buffers: the end came after the pause
        self.assertGreaterEqual(t_done - t0, self.PAUSE - 0.3)
        self.assertTrue(c.cmd("NOOP").startswith("+OK"))
        self.assertTrue(c.quit().startswith("+OK"))


if __name__ == "__main__":
    unittest.main()
