"""The figures move the right way: LIVE and HISTORIC CONNECTIONS with POP3
connections, BYTES SENT/RECEIVED with POP3 traffic (and only POP3)."""
import os
import unittest

from mgmtlib import MgmtServer, fixture_messages, wait_figure, wire_form


class Figures(unittest.TestCase):
    def setUp(self):
        self.srv = MgmtServer().__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.m = self.srv.mgmt()
        self.pop = []
        self.assertEqual(wait_figure(self.m, "LIVE CONNECTIONS", 0), 0)

    def tearDown(self):
        for c in self.pop:
            c.close()
        self.m.close()

    def open(self):
        c = self.srv.client(timeout=5)
        self.pop.append(c)
        self.assertTrue(c.greeting().startswith("+OK"))
        return c

    def test_live_connections_three_sessions(self):
        for _ in range(3):
            self.open()
        self.assertEqual(self.m.status()["LIVE CONNECTIONS"], 3)
        self.assertEqual(self.m.figures("LIVE_CONNEC")["LIVE CONNECTIONS"], 3)

    def test_live_connections_fall_when_sessions_end(self):
        cs = [self.open() for _ in range(3)]
        cs[0].quit()
        cs[1].close()          # a plain disconnect
        self.assertEqual(wait_figure(self.m, "LIVE CONNECTIONS", 1), 1)

    def test_historic_connections_count_every_connection(self):
        h0 = self.m.status()["HISTORIC CONNECTIONS"]
        for _ in range(3):
            self.open().quit()
        self.assertEqual(wait_figure(self.m, "LIVE CONNECTIONS", 0), 0)
        self.assertEqual(self.m.status()["HISTORIC CONNECTIONS"], h0 + 3)
        self.assertEqual(self.m.figures("HISTORIC_CONNEC")
                         ["HISTORIC CONNECTIONS"], h0 + 3)

    def test_refused_connection_counted(self):
        # A client over MAX_CONNEC connected and was sent its -ERR line:
        # both show, as for any POP3 connection.
        self.assertEqual(self.m.ask("MAX_CONNEC 1"), "+OK MAX_CONNEC CHANGED")
        self.open()
        st0 = self.m.status()
        c = self.srv.client(timeout=5)
        self.pop.append(c)
        line = c.line()
        self.assertTrue(line.startswith(b"-ERR"), line)
        self.assertTrue(c.closed(5))
        st1 = self.m.status()
        self.assertEqual(st1["HISTORIC CONNECTIONS"],
                         st0["HISTORIC CONNECTIONS"] + 1)
        self.assertEqual(st1["BYTES SENT"], st0["BYTES SENT"] + len(line))
        self.assertEqual(st1["LIVE CONNECTIONS"], 1)

    def test_mgmt_connections_not_counted(self):
        st0 = self.m.status()
        others = [self.srv.mgmt() for _ in range(3)]
        st1 = self.m.status()
        for o in others:
            o.close()
        self.assertEqual(st1["LIVE CONNECTIONS"], st0["LIVE CONNECTIONS"])
        self.assertEqual(st1["HISTORIC CONNECTIONS"],
                         st0["HISTORIC CONNECTIONS"])

    def test_bytes_sent_grow_by_retrieved_message(self):
        c = self.open()
        c.cmd("USER alice")
        self.assertTrue(c.cmd("PASS secret").startswith("+OK"))
        # the first message of alice, in wire form
        wire = wire_form(fixture_messages("alice")[0][1])
        size = int(c.cmd("LIST 1").split()[2])
        self.assertEqual(size, len(wire))
        s0 = self.m.figures("BYTES_TRANS")["BYTES SENT"]
        first = c.cmd("RETR 1")
        self.assertTrue(first.startswith("+OK"))
        body = c.multiline()
        s1 = self.m.figures("BYTES_TRANS")["BYTES SENT"]
        self.assertGreaterEqual(s1 - s0, size)
        self.assertEqual(s1 - s0, len(first) + len(body) + 3)

    def test_bytes_received_grow_by_commands(self):
        c = self.open()
        r0 = self.m.status()["BYTES RECEIVED"]
        sent = 0
        for cmd in ("USER alice", "PASS secret", "STAT", "NOOP",
                    "LIST 1"):
            c.cmd(cmd)
            sent += len(cmd) + 2
        r1 = self.m.status()["BYTES RECEIVED"]
        self.assertEqual(r1 - r0, sent)

    def test_bytes_of_big_retr(self):
        d = os.path.join(self.srv.maildir, "bob", "cur")
        data = b"Subject: big\n\n" + b"0123456789abcdef\n" * 200000
        with open(os.path.join(d, "1900000000.big.test:2,"), "wb") as f:
            f.write(data)
        c = self.open()
        c.cmd("USER bob")
        self.assertTrue(c.cmd("PASS hunter2").startswith("+OK"))
        s0 = self.m.status()["BYTES SENT"]
        self.assertTrue(c.cmd("RETR 3").startswith("+OK"))
        body = c.multiline()
        self.assertEqual(body, wire_form(data))
        s1 = self.m.status()["BYTES SENT"]
        self.assertGreaterEqual(s1 - s0, len(wire_form(data)))

    def test_mgmt_traffic_not_counted_as_bytes(self):
        st0 = self.m.status()
        for _ in range(5):
            self.m.ok("CAPA")
            self.m.ok("USERS")
        st1 = self.m.status()
        self.assertEqual(st1["BYTES SENT"], st0["BYTES SENT"])
        self.assertEqual(st1["BYTES RECEIVED"], st0["BYTES RECEIVED"])

    def test_total_users_follows_changes(self):
        n = self.m.status()["TOTAL USERS"]
        self.m.ok("ADD_USER pat Pat-Pw-1")
        self.assertEqual(self.m.status()["TOTAL USERS"], n + 1)
        self.m.ok("DELETE_USER pat")
        self.assertEqual(self.m.status()["TOTAL USERS"], n)


if __name__ == "__main__":
    unittest.main()
