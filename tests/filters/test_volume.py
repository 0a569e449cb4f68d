"""Volume and back-pressure: a 50 MB message through cat byte-exact with
the server's memory flat, a filter flooding output to a client that reads
slowly (bounded buffers, the filter held back, others served), and a
client pausing longer than the filter time limit while the filter (one
that ignores its input, and cat, which reads it) is held back by that
very client, or by a MGMT TIMEOUT pause."""
import re
import time
import unittest

from filterlib import (OK_FILTERED, FilterServer, FilterTest, RssSampler,
                       big_message, expected_body,
                       read_multiline_or_close, recv_some,
                       small_rcvbuf_client)

# The server must not keep a message (or a filter's output) in memory:
# its resident size may grow by far less than the data that went through.
RSS_SLACK_KB = 12 * 1024


def flood_command(lines):
    """A filter that ignores its input and writes `lines` numbered lines
    (every third one starting with '.'), as fast as it may."""
    return ("cat >/dev/null; exec awk 'BEGIN { for (i = 0; i < %d; i++) "
            "printf \"%%s%%07d flood line abcdefghijklmnopqrstuvwxyz\\n\", "
            "(i %% 3 == 0 ? \".\" : \"\"), i }'" % lines)


def flood_output(lines):
    return b"".join(b"%s%07d flood line abcdefghijklmnopqrstuvwxyz\n"
                    % (b"." if i % 3 == 0 else b"", i)
                    for i in range(lines))


class Volume(FilterTest):

    def test_stderr_flood_logs_a_bounded_number_of_lines(self):
        # A filter that warns at every line of a big message would write
        # the log's disk full; the first 100 lines are logged, the rest
        # counted, and the message still comes through whole.
        warn = "awk '{ print \"warn \" NR > \"/dev/stderr\"; print }'"
        data = b"".join(b"line %d\n" % i for i in range(5000))
        with FilterServer(filter=warn) as srv:
            srv.add_message("alice", "1800000000.M1P9.warn:2,", data,
                            1800000000)
            c = srv.pop3("alice")
            n = int(c.cmd("STAT").split()[1])
            sid = srv.session_id(c)
            self.assertEqual(c.cmd("RETR %d" % n), OK_FILTERED)
            body, complete = read_multiline_or_close(c, timeout=30)
            self.assertTrue(complete)
            self.assertEqual(body, expected_body(data))
            c.quit()
            self.assertTrue(srv.wait_log(
                r"pop3\[%d\] filter: 4900 more lines on standard error "
                r"not logged$" % sid), srv.log_text())
            warned = [ln for ln in srv.log_text().splitlines()
                      if re.search(r"pop3\[%d\] filter: warn \d+$" % sid,
                                   ln)]
            self.assertEqual(len(warned), 100)
            self.assertTrue(warned[0].endswith(" warn 1"), warned[0])
            # Said once: at the end of stderr, not again when the filter
            # is freed.
            self.assertTrue(srv.wait_log(r"pop3\[%d\] \S+ user=alice "
                                         r"logout" % sid), srv.log_text())
            self.assertEqual(srv.log_text().count(
                "pop3[%d] filter: 4900 more lines" % sid), 1)

    def test_50mb_through_cat(self):
        data = big_message(50 * 1024 * 1024)
        with FilterServer(filter="cat") as srv:
            srv.add_message("alice", "1800000000.M1P9.big:2,", data,
                            1800000000)
            c = srv.pop3("alice", timeout=60)
            n = int(c.cmd("STAT").split()[1])
            rss0 = srv.rss_kb()
            t0 = time.monotonic()
            with RssSampler(srv) as rss:
                self.assertEqual(c.cmd("RETR %d" % n), OK_FILTERED)
                body, complete = read_multiline_or_close(c, timeout=60)
            elapsed = time.monotonic() - t0
            self.assertTrue(complete, "no '.' after %d octets" % len(body))
            want = expected_body(data)
            self.assertEqual(len(body), len(want))
            if body != want:
                at = next(i for i in range(len(want)) if body[i] != want[i])
                self.fail("50 MB body differs from octet %d: %r vs %r"
                          % (at, body[at:at + 40], want[at:at + 40]))
            del body, want
            self.assertLess(rss.peak - rss0, RSS_SLACK_KB,
                            "server RSS grew %d kB during a 50 MB RETR"
                            % (rss.peak - rss0))
            self.assertLess(elapsed, 40)
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            c.quit()
            self.assert_clean(srv)

    def test_flood_to_a_slow_reader(self):
        lines = 200_000                          # about 10 MB
        out = flood_output(lines)
        with FilterServer(filter=flood_command(lines)) as srv:
            c = small_rcvbuf_client(srv)
            c.login("alice", "secret")
            rss0 = srv.rss_kb()
            with RssSampler(srv) as rss:
                self.assertEqual(c.cmd("RETR 1"), OK_FILTERED)
                got = bytearray(c.buf)
                c.buf = b""
                got += recv_some(c.sock, 200_000)
                pid = self.wait_child(srv)
                # The client stops reading: the filter must be held back
                # (awk writes 10 MB in well under a second unblocked),
                # and other clients are served meanwhile.
                t_pause = time.monotonic()
                b = srv.pop3("bob")
                worst = 0.0
                while time.monotonic() - t_pause < 1.0:
                    t1 = time.monotonic()
                    self.assertTrue(b.cmd("NOOP").startswith("+OK"))
                    worst = max(worst, time.monotonic() - t1)
                    time.sleep(0.05)
                b.quit()
                self.assertLess(worst, 0.3)
                self.assertIn(pid, srv.children(),
                              "the filter finished: no back-pressure")
                self.assertNotEqual(srv.children()[pid][0], "Z")
                # Then reads slowly: 16 kB every 2 ms.
                c.sock.settimeout(15)
                while not got.endswith(b"\r\n.\r\n"):
                    chunk = c.sock.recv(16384)
                    if not chunk:
                        break
                    got += chunk
                    time.sleep(0.002)
            self.assertTrue(got.endswith(b"\r\n.\r\n"),
                            "closed after %d octets" % len(got))
            want = expected_body(out) + b".\r\n"
            self.assertEqual(len(got), len(want))
            self.assertTrue(bytes(got) == want, "flood output differs")
            self.assertLess(rss.peak - rss0, RSS_SLACK_KB,
                            "server RSS grew %d kB" % (rss.peak - rss0))
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            c.quit()
            self.assert_clean(srv)

    def pause_longer_than_limit(self, srv, want, pause=None):
        """RETR of the last message, a pause longer than the filter's
        limit once the filter is held back (the client's, or pause()),
        then the rest: the message must complete, byte-exact."""
        c = small_rcvbuf_client(srv)
        c.login("alice", "secret")
        n = int(c.cmd("STAT").split()[1])
        self.assertEqual(c.cmd("RETR %d" % n), OK_FILTERED)
        got = bytearray(c.buf)
        c.buf = b""
        got += recv_some(c.sock, 100_000)
        self.wait_child(srv)
        (pause or (lambda: time.sleep(3.0)))()   # the scenario
        rest, complete = read_multiline_or_close(c, timeout=30)
        got += rest
        self.assertTrue(complete, "connection closed after %d of %d "
                        "octets: the filter was killed for the "
                        "client's pause" % (len(got), len(want)))
        self.assertTrue(bytes(got) == want, "filtered message differs")
        c.quit()
        self.assert_clean(srv)

    def test_reader_pause_longer_than_filter_timeout(self):
        # The filter keeps writing; only the client's pause holds it back.
        # That is no silence of the filter: the message must complete.
        lines = 200_000
        out = flood_output(lines)
        with FilterServer(filter=flood_command(lines), timeout=2) as srv:
            self.pause_longer_than_limit(srv, expected_body(out))

    def pause_while_cat_reads(self, make_pause=None):
        """pause_longer_than_limit() with cat, which stops reading its
        input once its output is held back: still no silence of the
        filter.  make_pause(srv) gives the pause (default the client's)."""
        data = big_message(8 * 1024 * 1024)
        with FilterServer(filter="cat", timeout=2) as srv:
            srv.add_message("alice", "1800000000.M1P9.big:2,", data,
                            1800000000)
            pause = make_pause(srv) if make_pause else None
            self.pause_longer_than_limit(srv, expected_body(data), pause)

    def test_reader_pause_with_filter_reading_its_input(self):
        self.pause_while_cat_reads()

    def test_service_pause_longer_than_filter_timeout(self):
        # MGMT TIMEOUT freezes the POP3 sessions, not the filter: the
        # pause must not kill the filter feeding a RETR.
        def mgmt_pause(srv):
            m = srv.mgmt()

            def pause():
                m.send("TIMEOUT 3\r\n")
                self.assertEqual(m.text(), "+OK TIMEOUT COMPLETED")
                m.close()
            return pause

        self.pause_while_cat_reads(mgmt_pause)

    def test_reading_its_input_is_no_silence(self):
        # A scanner reads the whole message before it writes a byte: each
        # slice it takes is progress, though every pause between them is
        # close to the limit and all together are well past it.
        data = big_message(1_000_000)
        with FilterServer(filter="sleep 0.7; head -c 200000 >/dev/null; "
                          "sleep 0.7; head -c 200000 >/dev/null; "
                          "sleep 0.7; cat >/dev/null; echo ok",
                          timeout=1) as srv:
            srv.add_message("alice", "1800000000.M1P9.big:2,", data,
                            1800000000)
            c = srv.pop3("alice")
            n = int(c.cmd("STAT").split()[1])
            self.assertEqual(c.cmd("RETR %d" % n), OK_FILTERED)
            body, complete = read_multiline_or_close(c, timeout=20)
            self.assertTrue(complete, body[:200])
            self.assertEqual(body, b"ok\r\n")
            c.quit()
            self.assert_clean(srv)


if __name__ == "__main__":
    unittest.main()
