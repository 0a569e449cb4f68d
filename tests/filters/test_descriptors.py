"""After every kind of filtered RETR on one server (success, failures
before and after the +OK, timeouts, clients gone mid-filter, concurrent
ones), the server's open descriptor count is back where it started and
no child is left, zombie or not.  A filter inherits no descriptor of
the server's but its three pipes: not the log, not a socket."""
import os
import shutil
import tempfile
import unittest

from filterlib import (ALICE, ERR_FILTER, OK_FILTERED, UPPER, FilterServer,
                       FilterTest, ascii_upper, big_message, expected_body,
                       line_or_eof, read_multiline_or_close, recv_some)

BIG = big_message(1_000_000)
BIG_N = len(ALICE) + 1
USERS = dict({"admin": "Adm1n-Pw.7731", "alice": "secret", "bob": "hunter2"},
             **{"c%02d" % i: "pw%02d" % i for i in range(13)})


class Descriptors(FilterTest):

    def test_every_scenario_leaves_nothing_behind(self):
        with FilterServer(filter=UPPER, timeout=2, users=USERS) as srv:
            base = srv.base_fds
            srv.add_message("alice", "1800000000.M1P9.big:2,", BIG,
                            1800000000)
            for i in range(13):
                srv.add_message("c%02d" % i, "1700000001.M1P%d.d:2," % i,
                                ALICE[1][1], 1700000001)
            m = srv.mgmt()
            c = srv.pop3("alice")

            def retr_ok(n, raw):
                self.assertEqual(c.cmd("RETR %d" % n), OK_FILTERED)
                body, complete = read_multiline_or_close(c)
                self.assertTrue(complete)
                self.assertEqual(body, expected_body(ascii_upper(raw)))

            def retr_err(n):
                self.assertEqual(c.cmd("RETR %d" % n), ERR_FILTER)

            # Success, small and big.
            retr_ok(1, ALICE[0][1])
            retr_ok(BIG_N, BIG)
            # Failures before the +OK.
            for cmd in ("exit 1", "/nonexistent/filter", "kill -9 $$",
                        "cat >/dev/null; exit 2"):
                m.set_filter(cmd)
                retr_err(1)
                retr_err(BIG_N)
            # Silent past the limit.
            m.set_filter("exec sleep 30")
            retr_err(2)
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            # Failure after the +OK: the connection goes.
            m.set_filter("head -c 200000; exit 1")
            self.assertEqual(c.cmd("RETR %d" % BIG_N), OK_FILTERED)
            _, complete = read_multiline_or_close(c)
            self.assertFalse(complete)
            c.close()
            # A client gone before the filter's first byte, and one gone
            # in the middle of the message (each session its own user: a
            # session ends a little after its client goes).
            m.set_filter("sleep 30; cat")
            c = srv.pop3("c10")
            c.send("RETR 1\r\n")
            self.wait_child(srv, min_group=2)
            c.close()
            m.set_filter("cat; exec yes flood")
            c = srv.pop3("c11")
            self.assertEqual(c.cmd("RETR 1"), OK_FILTERED)
            self.assertEqual(len(recv_some(c.sock, 50_000)), 50_000)
            c.close()
            # Ten at once, one of them leaving early.
            m.set_filter(UPPER)
            cs = [srv.pop3("c%02d" % i) for i in range(10)]
            for x in cs:
                x.send("RETR 1\r\n")
            cs[0].close()
            for x in cs[1:]:
                self.assertEqual(line_or_eof(x), OK_FILTERED)
                body, complete = read_multiline_or_close(x)
                self.assertTrue(complete)
                self.assertEqual(body,
                                 expected_body(ascii_upper(ALICE[1][1])))
                x.quit()
            # And a last normal session.
            c = srv.pop3("c12")
            retr_ok(1, ALICE[1][1])
            c.quit()
            m.close()
            # The silent child above may live until the 2 s limit; all
            # must be gone after that.
            self.assert_clean(srv, timeout=5)
            self.assertEqual(srv.fds(), base)


class LoggedFilterServer(FilterServer):
    """A FilterServer whose access log is also written with --log (to
    the file its standard error goes to, which the harness reads)."""

    def start(self):
        if "--log" not in self.args:
            self.args += ["--log", self.log_file]
        super().start()


class Inherited(FilterTest):

    def test_filter_gets_no_server_descriptor(self):
        # The filter runs a command of the operator's choice: with the
        # --log file open it could write forged access-log lines, and a
        # client socket would let it talk to another user's session.
        tmp = tempfile.mkdtemp(prefix="filtertest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        seen = os.path.join(tmp, "fds")
        probe = ("for f in /proc/$$/fd/*; do readlink \"$f\"; done >%s; cat"
                 % seen)
        with LoggedFilterServer(filter=probe) as srv:
            c = srv.pop3("alice")
            self.assertEqual(c.cmd("RETR 1"), OK_FILTERED)
            _, complete = read_multiline_or_close(c)
            self.assertTrue(complete)
            c.quit()
            self.assert_clean(srv)
        with open(seen) as f:
            targets = f.read().split()
        self.assertIn(seen, targets)          # the probe saw its own
        for t in targets:
            self.assertNotIn(t, (srv.log_file, srv.users_file), targets)
            self.assertFalse(t.startswith("socket:"), targets)


if __name__ == "__main__":
    unittest.main()
