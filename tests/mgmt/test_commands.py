"""ACTIVE_MGMT replies that change nothing (NOOP, CAPA, the figures,
USERS), the reply formats, argument errors and line framing (CRLF or
LF, 255-octet limit, NUL bytes, garbage, unknown commands)."""
import re
import time
import unittest

from mgmtlib import (ACTIVE_COMMANDS, STATUS_KEYS, MgmtServer,
                     parse_figures, recv_within)


class ActiveReplies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t_start = time.monotonic()
        cls.srv = MgmtServer(idle=45, args=["-m", "77"]).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def setUp(self):
        self.m = self.srv.mgmt()

    def tearDown(self):
        self.m.close()

    def test_noop(self):
        self.assertEqual(self.m.run("NOOP"), ("+OK NOOP", None))
        self.assertTrue(self.m.alive())

    def test_capa_lists_every_active_command(self):
        first, body = self.m.run("CAPA")
        self.assertEqual(first, "+OK CAPA")
        names = [ln.split()[0].upper() for ln in body if ln.strip()]
        for cmd in ACTIVE_COMMANDS:
            self.assertIn(cmd, names, "CAPA lacks %s: %r" % (cmd, body))
        self.assertEqual(len(names), len(set(names)), body)
        self.assertNotIn("", body)

    def test_capa_synopses_show_arguments(self):
        body = self.m.ok("CAPA")
        syn = {ln.split()[0].upper(): ln.split()[1:] for ln in body}
        want = {"NOOP": 0, "CAPA": 0, "STATUS": 0, "USERS": 0,
                "MAX_USERS": 1, "MAX_CONNEC": 1, "IDLE_TIMEOUT": 1,
                "TIMEOUT": 1, "DELETE_USER": 1, "ADD_USER": 2,
                "RESET_USER_PASSWORD": 1, "CHANGE_PASSWORD": 2}
        for cmd, n in want.items():
            self.assertEqual(len(syn.get(cmd, ())), n,
                             "synopsis of %s: %r" % (cmd, syn.get(cmd)))

    def test_capa_commands_are_known(self):
        """Every command CAPA lists is one the server accepts (given no
        arguments it may complain about them, never 'UNKNOWN')."""
        for ln in self.m.ok("CAPA"):
            cmd = ln.split()[0]
            if cmd.upper() == "QUIT":
                continue
            first, _ = self.m.run(cmd)
            self.assertNotIn("UNKNOWN", first, cmd)

    def test_status_has_exactly_the_keys(self):
        first, body = self.m.run("STATUS")
        self.assertEqual(first, "+OK STATUS")
        for ln in body:
            self.assertRegex(ln, r"^[A-Z][A-Z ]*[A-Z]: \d+$")
        self.assertNotIn("", body)
        fig = parse_figures(body)
        self.assertEqual(sorted(fig), sorted(STATUS_KEYS))
        self.assertEqual(len(body), len(STATUS_KEYS))

    def test_status_reflects_command_line(self):
        st = self.m.status()
        self.assertEqual(st["MAX CONNECTIONS"], 77)
        self.assertEqual(st["IDLE TIMEOUT"], 45)
        self.assertEqual(st["TOTAL USERS"], 3)
        self.assertGreaterEqual(st["MAX USERS"], 3)

    def test_uptime_is_seconds_since_start(self):
        up = self.m.status()["UPTIME"]
        self.assertLessEqual(up, time.monotonic() - self.t_start + 1)
        self.assertGreaterEqual(up, 0)

    def test_historic_connec(self):
        first, body = self.m.run("HISTORIC_CONNEC")
        self.assertEqual(first, "+OK HISTORIC_CONNEC")
        self.assertEqual(len(body), 1, body)
        self.assertRegex(body[0], r"^HISTORIC CONNECTIONS: \d+$")
        self.assertEqual(parse_figures(body)["HISTORIC CONNECTIONS"],
                         self.m.status()["HISTORIC CONNECTIONS"])

    def test_live_connec(self):
        first, body = self.m.run("LIVE_CONNEC")
        self.assertEqual(first, "+OK LIVE_CONNEC")
        self.assertEqual(len(body), 1, body)
        self.assertRegex(body[0], r"^LIVE CONNECTIONS: \d+$")
        self.assertEqual(parse_figures(body)["LIVE CONNECTIONS"],
                         self.m.status()["LIVE CONNECTIONS"])

    def test_bytes_trans(self):
        first, body = self.m.run("BYTES_TRANS")
        self.assertEqual(first, "+OK BYTES_TRANS")
        fig = parse_figures(body)
        self.assertEqual(sorted(fig), ["BYTES RECEIVED", "BYTES SENT"])
        st = self.m.status()
        self.assertEqual(fig["BYTES SENT"], st["BYTES SENT"])
        self.assertEqual(fig["BYTES RECEIVED"], st["BYTES RECEIVED"])

    def test_users(self):
        first, body = self.m.run("USERS")
        self.assertEqual(first, "+OK USERS")
        self.assertRegex(body[0], r"^USER COUNT: \d+$")
        self.assertEqual(body[1], "USER LIST:")
        names = body[2:]
        self.assertEqual(int(body[0].split(": ")[1]), len(names))
        self.assertEqual(sorted(names), ["admin", "alice", "bob"])
        self.assertEqual(len(names), self.m.status()["TOTAL USERS"])

    def test_users_twice_in_one_session_lists_the_same(self):
        # The listing goes on after the last name it sent; a second USERS
        # must start again from the first name, not after the last one.
        first = self.m.ok("USERS")
        second = self.m.ok("USERS")
        self.assertEqual(second, first)
        self.assertEqual(sorted(second[2:]), ["admin", "alice", "bob"])
        self.assertEqual(second[0], "USER COUNT: 3")

    def test_keyword_is_upper_case_whatever_the_case_sent(self):
        for cmd in ("NOOP", "CAPA", "HISTORIC_CONNEC", "LIVE_CONNEC",
                    "BYTES_TRANS", "USERS", "STATUS"):
            with self.subTest(cmd=cmd):
                first, _ = self.m.run(cmd.lower())
                self.assertEqual(first, "+OK " + cmd)

    def test_multiline_error_is_single_line(self):
        """An -ERR of a multi-line command has no body: the next reply is
        the next command's."""
        for cmd in ("MAX_USERS 0", "DELETE_USER admin",
                    "DELETE_USER ghost", "ADD_USER admin x",
                    "RESET_USER_PASSWORD ghost",
                    "CHANGE_PASSWORD not-it other"):
            with self.subTest(cmd=cmd):
                r = self.m.ask(cmd)
                self.assertTrue(r.startswith("-ERR"), r)
                self.assertEqual(self.m.ask("NOOP"), "+OK NOOP")

    def test_unknown_command(self):
        for cmd in ("HELLO", "STATUSX", "RETR 1", "MAX-USERS 5", "LIST"):
            with self.subTest(cmd=cmd):
                self.assertEqual(self.m.ask(cmd), "-ERR UNKNOWN COMMAND")
        self.assertTrue(self.m.alive())

    def test_empty_line(self):
        r = self.m.ask("")
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertTrue(self.m.alive())

    def test_missing_arguments(self):
        for cmd in ("MAX_USERS", "MAX_CONNEC", "IDLE_TIMEOUT", "TIMEOUT",
                    "DELETE_USER", "ADD_USER", "ADD_USER onlyname",
                    "RESET_USER_PASSWORD", "CHANGE_PASSWORD",
                    "CHANGE_PASSWORD onlyold"):
            with self.subTest(cmd=cmd):
                r = self.m.ask(cmd)
                self.assertTrue(r.startswith("-ERR"), r)
                self.assertGreater(len(r), len("-ERR "), "no reason: %r" % r)
                self.assertTrue(self.m.alive())

    def test_extra_arguments(self):
        for cmd in ("NOOP x", "STATUS now", "CAPA all", "USERS all",
                    "MAX_USERS 5 6", "MAX_CONNEC 5 6", "IDLE_TIMEOUT 60 1",
                    "TIMEOUT 1 2", "DELETE_USER bob alice",
                    "ADD_USER zed pw extra", "RESET_USER_PASSWORD bob x"):
            with self.subTest(cmd=cmd):
                r = self.m.ask(cmd)
                self.assertTrue(r.startswith("-ERR"), r)
                self.assertTrue(self.m.alive())
        users = self.m.ok("USERS")
        self.assertIn("bob", users)
        self.assertNotIn("zed", users)
        st = self.m.status()
        self.assertEqual(st["MAX CONNECTIONS"], 77)
        self.assertEqual(st["IDLE TIMEOUT"], 45)

    # framing

    def test_bare_lf_accepted(self):
        self.m.send("NOOP\n")
        self.assertEqual(self.m.text(), "+OK NOOP")

    def test_byte_at_a_time(self):
        for b in b"NOOP\r\n":
            self.m.send(bytes([b]))
        self.assertEqual(self.m.text(), "+OK NOOP")

    def test_several_spaces_between_arguments(self):
        r = self.m.ask("RESET_USER_PASSWORD     ghost")
        self.assertEqual(r, "-ERR USER NOT FOUND")

    def test_256_octet_line_too_long(self):
        line = "NOOP " + "x" * (256 - 2 - 5)
        self.assertEqual(len(line) + 2, 256)
        self.assertEqual(self.m.ask(line), "-ERR LINE TOO LONG")
        self.assertEqual(self.m.ask("NOOP"), "+OK NOOP")

    def test_255_octet_line_is_not_too_long(self):
        line = "X" * 253
        self.assertEqual(self.m.ask(line), "-ERR UNKNOWN COMMAND")

    def test_huge_line_one_error_then_goes_on(self):
        self.m.send("A" * 100000 + "\r\nNOOP\r\n")
        self.assertEqual(self.m.text(), "-ERR LINE TOO LONG")
        self.assertEqual(self.m.text(), "+OK NOOP")
        self.assertIsNone(recv_within(self.m, 0.2),
                          "more replies than lines")

    def test_nul_bytes(self):
        for raw in (b"NO\x00OP\r\n", b"NOOP\x00\r\n", b"\x00\x00\x00\r\n"):
            with self.subTest(raw=raw):
                self.m.send(raw)
                r = self.m.text()
                self.assertTrue(r.startswith("-ERR"), r)
                self.assertTrue(self.m.alive())

    def test_garbage_bytes(self):
        for raw in (b"\xff\xfe\xfd\x80\x81\r\n", b"\x01\x02\x03\x1b[2J\r\n",
                    b"\xc3\xa9t\xc3\xa9 \xe2\x82\xac\r\n", b"\t\t\r\n",
                    bytes(range(1, 10)) + bytes(range(14, 256)) + b"\r\n"):
            with self.subTest(raw=raw[:16]):
                self.m.send(raw)
                r = self.m.text()
                self.assertTrue(r.startswith("-ERR"), r)
                self.assertTrue(self.m.alive())

    def test_garbage_in_auth_state(self):
        a = self.srv.mgmt(login=False)
        try:
            a.text()
            a.send(b"\xff\xfe\x00garbage\r\n")
            self.assertTrue(a.text().startswith("-ERR"))
            a.send(b"\x80\x81\x82\r\n")
            self.assertTrue(a.text().startswith("-ERR"))
            a.send("USER " + "u" * 300 + "\r\n")
            self.assertEqual(a.text(), "-ERR LINE TOO LONG")
            self.assertEqual(a.ask("USER admin"), "+OK USER")
        finally:
            a.close()

    def test_replies_end_in_crlf(self):
        self.m.send("STATUS\r\n")
        raw = b""
        while not raw.endswith(b"\r\n.\r\n"):
            chunk = self.m.sock.recv(4096)
            self.assertTrue(chunk, "closed")
            raw += chunk
        self.assertNotRegex(raw, re.compile(rb"[^\r]\n"))
        self.assertTrue(raw.startswith(b"+OK STATUS\r\n"))


if __name__ == "__main__":
    unittest.main()
