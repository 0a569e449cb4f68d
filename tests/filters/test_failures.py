"""Failing filters: one that cannot start, exits non-zero at once, is
killed, writes half and dies, never reads its input, goes silent.  Before
anything was sent the reply is "-ERR [SYS/TEMP] filter failed" and the
session goes on; after the +OK the connection is closed, never a
truncated message closed by '.'.  Every child is reaped."""
import os
import resource
import time
import unittest

from filterlib import (ALICE, ERR_FILTER, OK_FILTERED, FilterServer,
                       FilterTest, big_message, expected_body, line_or_eof,
                       read_multiline_or_close, stuff, wire_form)

BIG = big_message(1_000_000)            # well over the pipe and buffers
BIG_N = len(ALICE) + 1                  # its number in alice's maildrop


def add_big(srv):
    srv.add_message("alice", "1800000000.M1P9.big:2,", BIG, 1800000000)


class Failures(FilterTest):

    def setUp(self):
        self.srv = FilterServer(filter="exit 1", timeout=2).__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        add_big(self.srv)
        self.m = self.srv.mgmt()
        self.c = self.srv.pop3("alice")

    def tearDown(self):
        try:
            self.c.close()
            self.m.close()
            self.assert_clean(self.srv)
        finally:
            super().tearDown()

    def assert_session_goes_on(self, c):
        self.assertTrue(c.cmd("NOOP").startswith("+OK"))
        self.assertTrue(c.cmd("STAT").startswith("+OK %d " % BIG_N))

    def assert_cut_short(self, c, full):
        """After a +OK: the connection must close without the '.' line;
        what came is a prefix of the full reply."""
        t0 = time.monotonic()
        got, complete = read_multiline_or_close(c, timeout=10)
        self.assertFalse(complete, "a truncated message ended with '.' "
                         "(%d of %d octets)" % (len(got), len(full)))
        self.assertLess(time.monotonic() - t0, 9,
                        "the connection was not closed")
        self.assertLess(len(got), len(full))
        self.assertEqual(got, full[:len(got)],
                         "what was sent is not a prefix of the message")
        self.assertTrue(self.srv.wait_log(
            r"user=alice closed by the server: a message could not be "
            r"sent whole", 5), "the cause of the close is not logged")

    def test_exit_1_at_once(self):
        for n in (1, 2, BIG_N, 1):
            with self.subTest(msg=n):
                self.assertEqual(self.c.cmd("RETR %d" % n), ERR_FILTER)
                self.assert_session_goes_on(self.c)
        self.assertTrue(self.srv.wait_log(r"pop3\[\d+\] filter failed"),
                        "no log line for the failed filter")
        self.c.quit()

    def test_cannot_start_command_not_found(self):
        self.m.set_filter("/nonexistent/filter-program --upper")
        self.assertEqual(self.c.cmd("RETR 1"), ERR_FILTER)
        self.assert_session_goes_on(self.c)
        # The session is usable: without a filter RETR works again.
        self.m.filter("-")
        first, body = self.c.multi("RETR 1")
        self.assertTrue(first.startswith("+OK"), first)
        self.assertEqual(body, stuff(wire_form(ALICE[0][1])))
        self.c.quit()

    def test_cannot_start_no_descriptors(self):
        # The server may open the message but not the filter's pipes:
        # RLIMIT_NOFILE is lowered (prlimit) to its highest descriptor
        # plus three.
        self.m.set_filter("cat")
        pid = self.srv.proc.pid
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        top = max(int(n) for n in os.listdir("/proc/%d/fd" % pid))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (top + 4, old[1]))
        try:
            r = self.c.cmd("RETR 1")
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
            self.assertTrue(self.c.cmd("NOOP").startswith("+OK"))
            r = self.c.cmd("RETR 2")
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
        self.assert_no_children(self.srv)
        first, body = self.c.multi("RETR 1")
        self.assertEqual(first, OK_FILTERED)
        self.assertEqual(body, expected_body(ALICE[0][1]))
        self.c.quit()

    def test_killed_before_output(self):
        self.m.set_filter("kill -9 $$")
        self.assertEqual(self.c.cmd("RETR 1"), ERR_FILTER)
        self.assert_session_goes_on(self.c)
        self.m.set_filter("cat >/dev/null; kill -TERM $$")
        self.assertEqual(self.c.cmd("RETR %d" % BIG_N), ERR_FILTER)
        self.assert_session_goes_on(self.c)
        self.c.quit()

    def test_everything_written_then_exit_1(self):
        # The whole (small) message, then a failure status: either the
        # -ERR (nothing sent yet) or +OK and a closed connection, never
        # the message with its '.'.
        self.m.set_filter("cat; exit 1")
        for n in (1, 2, 3):
            with self.subTest(msg=n):
                self.c.send("RETR %d\r\n" % n)
                first = line_or_eof(self.c)
                if first == OK_FILTERED:
                    self.assert_cut_short(
                        self.c, expected_body(ALICE[n - 1][1]) + b".\r\n")
                    return
                self.assertEqual(first, ERR_FILTER)
                self.assert_session_goes_on(self.c)
        self.c.quit()

    def test_writes_half_and_exits_non_zero(self):
        self.m.set_filter("head -c 400000; exit 3")
        self.assertEqual(self.c.cmd("RETR %d" % BIG_N), OK_FILTERED)
        self.assert_cut_short(self.c, expected_body(BIG) + b".\r\n")

    def test_writes_half_and_is_killed(self):
        self.m.set_filter("head -c 300001; kill -KILL $$")
        self.assertEqual(self.c.cmd("RETR %d" % BIG_N), OK_FILTERED)
        self.assert_cut_short(self.c, expected_body(BIG) + b".\r\n")

    def test_never_reads_its_input_and_stays_silent(self):
        # A 1 MB message into a filter that never reads and never writes:
        # -ERR after the filter time limit (2 s), the others meanwhile
        # served, the child killed.
        self.m.set_filter("exec sleep 60")
        self.c.send("RETR %d\r\n" % BIG_N)
        t0 = time.monotonic()
        self.wait_child(self.srv)
        b = self.srv.pop3("bob")
        t1 = time.monotonic()
        r = b.cmd("NOOP")
        dt = time.monotonic() - t1
        self.assertTrue(r.startswith("+OK"), r)
        self.assertLess(dt, 0.5, "NOOP of another client took %.2fs" % dt)
        b.quit()
        first = line_or_eof(self.c, timeout=10)
        elapsed = time.monotonic() - t0
        self.assertEqual(first, ERR_FILTER)
        self.assertGreater(elapsed, 1.5, "gave up before the time limit")
        self.assertLess(elapsed, 5.0, "the 2 s time limit was not kept")
        self.assert_no_children(self.srv, timeout=1.0)
        self.assert_session_goes_on(self.c)
        self.c.quit()

    def test_never_reads_its_input_and_answers(self):
        # A filter may ignore its input: exit 0 with output is a message.
        self.m.set_filter("echo replaced")
        for n in (BIG_N, 1):
            with self.subTest(msg=n):
                self.assertEqual(self.c.cmd("RETR %d" % n), OK_FILTERED)
                body, complete = read_multiline_or_close(self.c)
                self.assertTrue(complete)
                self.assertEqual(body, b"replaced\r\n")
        self.c.quit()

    def test_silent_after_first_output(self):
        # Output, then silence past the limit: the +OK is out, so the
        # connection is closed.
        self.m.set_filter("echo first line; exec sleep 60")
        t0 = time.monotonic()
        cpu0 = self.srv.cpu_seconds()
        self.assertEqual(self.c.cmd("RETR 1"), OK_FILTERED)
        got, complete = read_multiline_or_close(self.c, timeout=10)
        elapsed = time.monotonic() - t0
        # Waiting on the silent filter is no busy loop: a spin would
        # burn the whole wait.
        cpu = self.srv.cpu_seconds() - cpu0
        self.assertLess(cpu, elapsed / 2, "server used %.2fs CPU in %.1fs"
                        % (cpu, elapsed))
        self.assertFalse(complete, "a truncated message ended with '.'")
        self.assertEqual(got, b"first line\r\n"[:len(got)])
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 5.0)
        self.assert_no_children(self.srv, timeout=1.0)

    def test_background_child_holding_the_output_is_timed_out(self):
        # The shell exits, but a child it left behind keeps the output
        # pipe open and silent: the limit still applies, and the whole
        # process group is killed.
        self.m.set_filter("cat; sleep 60 &")
        self.c.send("RETR %d\r\n" % BIG_N)
        t0 = time.monotonic()
        _, complete = read_multiline_or_close(self.c, timeout=20)
        self.assertFalse(complete)
        self.assertLess(time.monotonic() - t0, 8,
                        "the session waited on the background child")

    def assert_no_spin_while(self, command, n):
        """RETR n through command, which sleeps 3 s with one of its pipes
        closed early: a dead pipe left in the reactor spins."""
        self.srv.stop()
        self.srv = FilterServer(filter=command, timeout=10).__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        add_big(self.srv)
        self.m.close()
        self.m = self.srv.mgmt()
        self.c.close()
        self.c = self.srv.pop3("alice")
        cpu0 = self.srv.cpu_seconds()
        self.c.send("RETR %d\r\n" % n)
        read_multiline_or_close(self.c, timeout=20)
        cpu = self.srv.cpu_seconds() - cpu0
        self.assertLess(cpu, 0.5, "server used %.2fs CPU while the "
                        "filter slept" % cpu)

    def test_filter_closing_its_input_early_does_not_spin(self):
        self.assert_no_spin_while("exec 0<&-; sleep 3; echo hi", BIG_N)

    def test_filter_closing_its_stderr_early_does_not_spin(self):
        self.assert_no_spin_while("exec 2>&-; sleep 3; cat", 1)


if __name__ == "__main__":
    unittest.main()
