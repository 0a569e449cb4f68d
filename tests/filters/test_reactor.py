"""Filters live in the one select() loop: a slow filter does not stall
other clients, 50 filtered RETRs run at once, and a client that goes away
mid-filter gets its child killed (whole process group) and reaped within
a second."""
import signal
import socket
import struct
import threading
import time
import unittest

from filterlib import (ALICE, BOB, OK_FILTERED, UPPER, FilterServer,
                       FilterTest, ascii_upper, big_message, children_of,
                       expected_body, group_members, line_or_eof,
                       read_multiline_or_close, recv_some, wait_for)

SLOW = ('if [ "$POP3_USERNAME" = alice ]; then sleep 5; fi; ' + UPPER)


class SlowFilter(FilterTest):

    def test_shutdown_while_the_filter_thinks_answers_the_retr(self):
        # Nothing of the RETR's reply is out yet: the stopping server
        # answers it with its notice, as it would any other command.
        with FilterServer(filter="sleep 5; cat") as srv:
            a = srv.pop3("alice")
            a.send("RETR 1\r\n")
            self.wait_child(srv, min_group=2)     # sh and its sleep
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(10), 0)
            self.assertEqual(line_or_eof(a),
                             "-ERR [SYS/TEMP] server shutting down\r\n")
            self.assertIsNone(line_or_eof(a))
            a.close()

    def test_sleeping_filter_does_not_stall_others(self):
        with FilterServer(filter=SLOW) as srv:
            a = srv.pop3("alice")
            b = srv.pop3("bob")
            cpu0 = srv.cpu_seconds()
            t0 = time.monotonic()
            a.send("RETR 1\r\n")
            self.wait_child(srv, min_group=2)     # sh and its sleep
            # bob: NOOP and filtered RETRs at full speed, repeatedly.
            worst = 0.0
            rounds = 0
            while time.monotonic() - t0 < 3.0:
                t1 = time.monotonic()
                self.assertTrue(b.cmd("NOOP").startswith("+OK"))
                for n in (1, 2):
                    self.assertEqual(b.cmd("RETR %d" % n), OK_FILTERED)
                    body, complete = read_multiline_or_close(b)
                    self.assertTrue(complete)
                    self.assertEqual(body,
                                     expected_body(ascii_upper(BOB[n - 1][1])))
                worst = max(worst, time.monotonic() - t1)
                rounds += 1
            self.assertLess(worst, 0.5, "bob waited %.2fs for NOOP+2 RETR "
                            "while alice's filter slept" % worst)
            self.assertGreaterEqual(rounds, 6)
            # alice: +OK only when the filter wrote, about 5 s later.
            first = a.line().decode()
            waited = time.monotonic() - t0
            self.assertEqual(first, OK_FILTERED)
            self.assertGreater(waited, 4.5, "+OK before the filter's output")
            self.assertLess(waited, 8.0)
            body, complete = read_multiline_or_close(a)
            self.assertTrue(complete)
            self.assertEqual(body, expected_body(ascii_upper(ALICE[0][1])))
            # No busy waiting on the sleeping filter: a spin would burn
            # the whole ~5 s.  Bob's forks and RETRs cost real CPU (about
            # 1 s under ASan, where fork copies a large address space).
            cpu = srv.cpu_seconds() - cpu0
            self.assertLess(cpu, waited / 2, "server used %.2fs CPU in %.1fs"
                            % (cpu, waited))
            a.quit()
            b.quit()
            self.assert_clean(srv)


    def test_waiting_on_the_filter_is_not_idleness(self):
        # The client waits for us, not we for it: a filter slower than
        # the idle timeout (bounded by its own time limit) must not get
        # the session logged out.
        with FilterServer(filter=SLOW, idle=2) as srv:
            a = srv.pop3("alice")
            a.send("RETR 1\r\n")
            self.assertEqual(a.line().decode(), OK_FILTERED)
            body, complete = read_multiline_or_close(a)
            self.assertTrue(complete)
            self.assertEqual(body, expected_body(ascii_upper(ALICE[0][1])))
            self.assertTrue(a.cmd("NOOP").startswith("+OK"))
            a.quit()
            self.assertNotIn("reason=timeout", srv.log_text())
            self.assert_clean(srv)


USERS50 = dict({"admin": "Adm1n-Pw.7731"},
               **{"u%02d" % i: "pw%02d" % i for i in range(50)})
MSG50 = big_message(200_000)


class Concurrent(FilterTest):

    def test_50_concurrent_filtered_retrs(self):
        # Each filter takes a second: 50 in a row would take 50.
        cmd = ('sleep 1; printf "X-User: %s\\n" "$POP3_USERNAME"; ' + UPPER)
        with FilterServer(filter=cmd, users=USERS50,
                          start_timeout=30) as srv:
            for i in range(50):
                srv.add_message("u%02d" % i, "1700000001.M1P%d.c:2," % i,
                                MSG50, 1700000001)
            clients = []
            try:
                for i in range(50):
                    clients.append(srv.pop3("u%02d" % i, timeout=60))
                results = [None] * 50
                errors = []
                go = threading.Barrier(50)

                def run(i):
                    c = clients[i]
                    try:
                        go.wait(10)
                        c.send("RETR 1\r\n")
                        first = c.line().decode()
                        body, complete = read_multiline_or_close(c,
                                                                 timeout=60)
                        results[i] = (first, body, complete)
                    except Exception as e:          # reported below
                        errors.append((i, repr(e)))

                threads = [threading.Thread(target=run, args=(i,))
                           for i in range(50)]
                t0 = time.monotonic()
                for t in threads:
                    t.start()
                running = wait_for(
                    lambda: len([p for p, st in children_of(srv.pid).items()
                                 if st[0] != "Z"]) >= 40, 10)
                self.assertTrue(running, "the filters did not run at once")
                for t in threads:
                    t.join(90)
                self.assertFalse(any(t.is_alive() for t in threads),
                                 "some RETR never finished")
                self.assertEqual(errors, [])
                for i, (first, body, complete) in enumerate(results):
                    want = expected_body(b"X-User: u%02d\n" % i
                                         + ascii_upper(MSG50))
                    self.assertEqual(first, OK_FILTERED, "client %d" % i)
                    self.assertTrue(complete, "client %d" % i)
                    self.assertTrue(body == want, "client %d: body differs "
                                    "(%d vs %d octets)"
                                    % (i, len(body), len(want)))
                took = time.monotonic() - t0
                self.assertLess(took, 15, "50 one-second filters took %.1fs"
                                % took)
                for c in clients:
                    self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            finally:
                for c in clients:
                    c.close()
            self.assert_clean(srv, timeout=5)


class Disconnect(FilterTest):

    def assert_group_gone(self, srv, pid, within=1.0):
        t0 = time.monotonic()
        gone = wait_for(lambda: pid not in srv.children()
                        and not group_members(pid), within + 0.5)
        dt = time.monotonic() - t0
        self.assertTrue(gone, "filter %d still there: server children %r, "
                        "group %r" % (pid, srv.children(),
                                      group_members(pid)))
        self.assertLess(dt, within, "the filter took %.2fs to go" % dt)

    def test_client_gone_while_filter_silent(self):
        # A closed client looks like a half-closed one until we write to
        # it: the silent filter goes at its time limit (2 s here).
        with FilterServer(filter="sleep 30; cat", timeout=2) as srv:
            c = srv.pop3("alice")
            c.send("RETR 1\r\n")
            pid = self.wait_child(srv, min_group=2)   # sh and sleep
            c.close()
            self.assert_group_gone(srv, pid, within=3.0)
            # The server is fine.
            c = srv.pop3("alice")
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            c.quit()
            self.assert_clean(srv)

    def test_client_reset_while_filter_thinks(self):
        # A reset (not a FIN, which reads as a half-close) ends the
        # session at once.  The filter neither reads nor writes, and its
        # time limit is far away: only the session's end can kill it.
        with FilterServer(filter="exec sleep 30", timeout=60) as srv:
            c = srv.pop3("alice")
            c.send("RETR 1\r\n")
            pid = self.wait_child(srv)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
            c.close()
            self.assertTrue(srv.wait_log(r"user=alice logout .* "
                                         r"reason=disconnect$"),
                            srv.log_text())
            self.assert_group_gone(srv, pid)
            self.assert_clean(srv)

    def test_client_gone_mid_message(self):
        flood = "cat; exec yes 'flood line of a filter that never ends'"
        with FilterServer(filter=flood) as srv:
            c = srv.pop3("alice")
            self.assertEqual(c.cmd("RETR 1"), OK_FILTERED)
            got = recv_some(c.sock, 100_000)
            self.assertEqual(len(got), 100_000)
            pid = self.wait_child(srv)
            c.close()
            self.assert_group_gone(srv, pid)
            c = srv.pop3("alice")
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            c.quit()
            self.assert_clean(srv)

    def test_client_gone_with_a_command_pipelined(self):
        # The filter (no grandchild) never answers; the client sends one
        # more command behind the RETR and goes.
        with FilterServer(filter="exec sleep 30", timeout=2) as srv:
            c = srv.pop3("bob")
            c.send("RETR 2\r\n")
            pid = self.wait_child(srv)
            c.send("NOOP\r\n")
            c.close()
            self.assert_group_gone(srv, pid, within=3.0)
            self.assert_clean(srv)

    def test_half_closed_client_gets_every_answer(self):
        # printf 'USER..PASS..RETR 1\r\nQUIT\r\n' | nc -N: the input
        # ends before the filter has answered; nothing may be lost.
        with FilterServer(filter="sleep 1; tr a-z A-Z") as srv:
            c = srv.client()
            c.sock.sendall(b"USER alice\r\nPASS %s\r\nRETR 1\r\nQUIT\r\n"
                           % srv.users["alice"].encode())
            c.sock.shutdown(socket.SHUT_WR)
            got = b""
            c.sock.settimeout(10)
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            lines = got.split(b"\r\n")
            self.assertTrue(lines[0].startswith(b"+OK"), got[:200])
            self.assertIn(OK_FILTERED.encode(), got)
            # the whole filtered message, then QUIT's answer
            self.assertIn(b"\r\n.\r\n+OK pop3server signing off", got,
                          got[-200:])
            self.assertTrue(got.endswith(b"\r\n"), got[-200:])
            self.assert_clean(srv)


if __name__ == "__main__":
    unittest.main()
