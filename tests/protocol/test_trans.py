"""TRANSACTION and UPDATE states (RFC 1939): STAT, LIST, RETR, TOP, UIDL,
DELE, RSET, NOOP, QUIT, on the fixture maildrops; sizes in wire form,
byte-stuffing, Maildir handling, deletion only after QUIT."""
import os
import re
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from pop3test import (Server, SharedServerTest,  # noqa: E402
                      fixture_messages, stuff, top_form, unstuff,
                      wire_form)

USERS = {"alice": "secret", "bob": "hunter2", "carol": "carolpw"}
MSGS = fixture_messages("alice")          # (uid, raw, cur name or None)
WIRES = [wire_form(m[1]) for m in MSGS]
N = len(MSGS)
TOTAL = sum(len(w) for w in WIRES)

STAT_RX = re.compile(r"^\+OK (\d+) (\d+)(?: [^\r\n]*)?\r\n$")
LISTN_RX = re.compile(r"^\+OK (\d+) (\d+)(?: [^\r\n]*)?\r\n$")
LIST_LINE_RX = re.compile(r"^(\d+) (\d+)(?: [^ ].*)?$")
UIDLN_RX = re.compile(r"^\+OK (\d+) ([\x21-\x7e]{1,70})\r\n$")
UIDL_LINE_RX = re.compile(r"^(\d+) ([\x21-\x7e]{1,70})$")
BAD_NUMBERS = ["0", "-1", "99", "abc", "4294967297", "18446744073709551617",
               "1 2", "+1", "1x", "0x1"]


def msg_index(uid):
    return [m[0] for m in MSGS].index(uid) + 1


class Session:
    """Logs in as alice on srv; use as a context manager (QUIT at end)."""

    def __init__(self, srv, user="alice", password="secret"):
        self.c = srv.client()
        r = self.c.login(user, password)
        assert r.startswith("+OK"), r

    def __enter__(self):
        return self.c

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.c.quit()
        finally:
            self.c.close()
        return False


def parse_stat(test, reply):
    m = STAT_RX.match(reply)
    test.assertIsNotNone(m, "bad STAT reply %r" % reply)
    return int(m.group(1)), int(m.group(2))


def uidl_map(test, c):
    out = {}
    for line in c.multi_lines("UIDL"):
        m = UIDL_LINE_RX.match(line)
        test.assertIsNotNone(m, "bad UIDL line %r" % line)
        out[int(m.group(1))] = m.group(2)
    return out


class ReadOnly(SharedServerTest):
    """Commands that change nothing; one server for the class."""

    SERVER_KW = dict(users=USERS)

    def test_stat_counts_wire_sizes(self):
        with Session(self.srv) as c:
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))

    def test_list_all(self):
        with Session(self.srv) as c:
            lines = c.multi_lines("LIST")
            self.assertEqual(len(lines), N, lines)
            for i, line in enumerate(lines, 1):
                m = LIST_LINE_RX.match(line)
                self.assertIsNotNone(m, "bad LIST line %r" % line)
                self.assertEqual(int(m.group(1)), i)
                self.assertEqual(int(m.group(2)), len(WIRES[i - 1]),
                                 "size of message %d (%s)"
                                 % (i, MSGS[i - 1][0]))

    def test_list_n_echoes_n(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                r = c.cmd("LIST %d" % i)
                m = LISTN_RX.match(r)
                self.assertIsNotNone(m, "bad LIST %d reply %r" % (i, r))
                self.assertEqual(int(m.group(1)), i)
                self.assertEqual(int(m.group(2)), len(WIRES[i - 1]))

    def check_bad_args(self, c, command):
        for arg in BAD_NUMBERS:
            r = c.cmd("%s %s" % (command, arg))
            self.assertTrue(r.startswith("-ERR"), "%s %s -> %r"
                            % (command, arg, r))
        self.assertTrue(c.cmd("NOOP").startswith("+OK"))

    def test_list_bad_numbers(self):
        with Session(self.srv) as c:
            self.check_bad_args(c, "LIST")

    def test_retr_bad_numbers(self):
        with Session(self.srv) as c:
            self.check_bad_args(c, "RETR")
            self.assertTrue(c.cmd("RETR").startswith("-ERR"))

    def test_dele_bad_numbers(self):
        with Session(self.srv) as c:
            self.check_bad_args(c, "DELE")
            self.assertTrue(c.cmd("DELE").startswith("-ERR"))
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))

    def test_uidl_bad_numbers(self):
        with Session(self.srv) as c:
            self.check_bad_args(c, "UIDL")

    def test_top_bad_arguments(self):
        with Session(self.srv) as c:
            for args in ("", "1", "0 0", "99 0", "1 -1", "1 abc", "abc 0",
                         "1 0 0", "4294967297 0", "1 4294967297x"):
                r = c.cmd("TOP " + args if args else "TOP")
                self.assertTrue(r.startswith("-ERR"), "TOP %s -> %r"
                                % (args, r))
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))

    def test_retr_every_message_byte_exact(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                first, body = c.multi("RETR %d" % i)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(unstuff(body), WIRES[i - 1],
                                 "message %d (%s)" % (i, MSGS[i - 1][0]))

    def test_retr_stuffing_on_the_wire(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                first, body = c.multi("RETR %d" % i)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(body, stuff(WIRES[i - 1]),
                                 "wire form of message %d" % i)
            i = msg_index("1700000002.M2P1.fixture")
            first, body = c.multi("RETR %d" % i)
            self.assertIn(b"\r\n..leading dot line\r\n", body)
            self.assertIn(b"\r\n..\r\n...\r\n....\r\n", body)
            self.assertTrue(body.endswith(b"\r\n..\r\n"), body[-20:])

    def test_retr_no_final_newline_gets_crlf_then_dot(self):
        i = msg_index("1700000004.M4P1.fixture")
        with Session(self.srv) as c:
            c.send("RETR %d\r\n" % i)
            self.assertTrue(c.line().startswith(b"+OK"))
            end = b"last line without newline\r\n.\r\n"
            # What line() already buffered is part of the body.
            raw, c.buf = c.buf, b""
            while not raw.endswith(end) and len(raw) < 4096:
                raw += c.sock.recv(4096)
            self.assertTrue(raw.endswith(end), raw)
            self.assertEqual(raw.count(b"\r\n.\r\n"), 1)

    def test_retr_crlf_file_not_doubled(self):
        i = msg_index("1700000003.M3P1.fixture")
        with Session(self.srv) as c:
            first, body = c.multi("RETR %d" % i)
            self.assertNotIn(b"\r\r", body)
            self.assertEqual(body, stuff(MSGS[i - 1][1]))

    def test_retr_empty_body(self):
        i = msg_index("1700000005.M5P1.fixture")
        with Session(self.srv) as c:
            first, body = c.multi("RETR %d" % i)
            self.assertTrue(first.startswith("+OK"), first)
            self.assertEqual(body, MSGS[i - 1][1].replace(b"\n", b"\r\n"))
            self.assertTrue(body.endswith(b"\r\n\r\n"))

    def test_retr_8bit_untouched(self):
        i = msg_index("1700000006.M6P1.fixture")
        with Session(self.srv) as c:
            first, body = c.multi("RETR %d" % i)
            self.assertIn(b"\x80\x81\xfe\xff\r\n", body)
            self.assertIn(b"\r\n..\xe9 dot", body)
            self.assertEqual(unstuff(body), WIRES[i - 1])

    def test_top_0_is_headers_and_blank_line(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                first, body = c.multi("TOP %d 0" % i)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(body, stuff(top_form(WIRES[i - 1], 0)),
                                 "TOP %d 0" % i)
                self.assertTrue(body.endswith(b"\r\n\r\n"))

    def test_top_1(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                first, body = c.multi("TOP %d 1" % i)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(body, stuff(top_form(WIRES[i - 1], 1)),
                                 "TOP %d 1" % i)

    def test_top_huge_count_is_whole_message(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                first, body = c.multi("TOP %d 99999999" % i)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(unstuff(body), WIRES[i - 1], "TOP %d" % i)

    def test_top_count_past_64_bits_is_whole_message(self):
        with Session(self.srv) as c:
            for k in ("18446744073709551616", "9" * 40):
                first, body = c.multi("TOP 1 " + k)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(unstuff(body), WIRES[0], "TOP 1 " + k)

    def test_top_is_byte_stuffed(self):
        i = msg_index("1700000002.M2P1.fixture")
        with Session(self.srv) as c:
            for k in (1, 2, 3, 4, 9, 10):
                first, body = c.multi("TOP %d %d" % (i, k))
                self.assertTrue(first.startswith("+OK"), first)
                self.assertEqual(body, stuff(top_form(WIRES[i - 1], k)),
                                 "TOP %d %d" % (i, k))

    def test_uidl_all(self):
        with Session(self.srv) as c:
            uids = uidl_map(self, c)
            self.assertEqual(sorted(uids), list(range(1, N + 1)))
            self.assertEqual(len(set(uids.values())), N, "UIDs not unique")
            self.assertEqual([uids[i] for i in range(1, N + 1)],
                             [m[0] for m in MSGS])

    def test_uidl_n_echoes_n(self):
        with Session(self.srv) as c:
            for i in range(1, N + 1):
                r = c.cmd("UIDL %d" % i)
                m = UIDLN_RX.match(r)
                self.assertIsNotNone(m, "bad UIDL %d reply %r" % (i, r))
                self.assertEqual(int(m.group(1)), i)
                self.assertEqual(m.group(2), MSGS[i - 1][0])

    def test_noop(self):
        with Session(self.srv) as c:
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            self.assertTrue(c.cmd("noop").startswith("+OK"))

    def test_wrong_state_and_unknown_commands(self):
        with Session(self.srv) as c:
            for cmd in ("USER alice", "PASS secret", "AUTH PLAIN",
                        "XYZZY", "RETRX 1", "APOP alice 0123"):
                r = c.cmd(cmd)
                self.assertTrue(r.startswith("-ERR"), "%s -> %r" % (cmd, r))
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))

    def test_other_users_maildrop(self):
        bob = fixture_messages("bob")
        with Session(self.srv, "bob", "hunter2") as c:
            size = sum(len(wire_form(m[1])) for m in bob)
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (len(bob), size))
            for i, m in enumerate(bob, 1):
                first, body = c.multi("RETR %d" % i)
                self.assertEqual(body, stuff(wire_form(m[1])))

    def test_empty_maildrop(self):
        with Session(self.srv, "carol", "carolpw") as c:
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (0, 0))
            c.send("LIST\r\n")
            self.assertTrue(c.line().startswith(b"+OK"))
            self.assertEqual(c.line(), b".\r\n")
            c.send("UIDL\r\n")
            self.assertTrue(c.line().startswith(b"+OK"))
            self.assertEqual(c.line(), b".\r\n")
            for cmd in ("RETR 1", "LIST 1", "TOP 1 0", "DELE 1", "UIDL 1"):
                self.assertTrue(c.cmd(cmd).startswith("-ERR"), cmd)
        for sub in ("cur", "new", "tmp"):
            self.assertTrue(os.path.isdir(os.path.join(
                self.srv.user_dir("carol"), sub)), sub)


    def test_empty_maildrop_counts_in_words(self):
        # Zero is plural: "0 messages", in every line that counts.
        c = self.srv.client()
        try:
            c.line()
            c.cmd("USER carol")
            tally = "+OK maildrop has 0 messages (0 octets)\r\n"
            self.assertEqual(c.cmd("PASS carolpw"), tally)
            first, _ = c.multi("LIST")
            self.assertEqual(first, "+OK 0 messages (0 octets)\r\n")
            self.assertEqual(c.cmd("RSET"), tally)
            self.assertEqual(c.cmd("QUIT"),
                             "+OK pop3server signing off (0 messages left)\r\n")
        finally:
            c.close()


class Mutating(unittest.TestCase):
    """Tests that change the maildrop: a server each."""

    def setUp(self):
        self.srv = Server(users=USERS, idle=2 if "idle" in self.id() else 30)
        self.srv.__enter__()

    def tearDown(self):
        self.srv.__exit__(None, None, None)

    def cur(self):
        return self.srv.cur_files("alice")

    def test_flags_renamed_by_another_reader(self):
        # An IMAP server or a mail user agent sharing the Maildir marks
        # message 1 seen (renames ":2," to ":2,S") during our session.
        cur = os.path.join(self.srv.user_dir("alice"), "cur")
        with Session(self.srv) as c:
            old = self.path_of(1)
            new = old.split(":")[0] + ":2,S"
            os.rename(old, new)
            first, body = c.multi("RETR 1")
            self.assertTrue(first.startswith("+OK"), first)
            self.assertEqual(body, stuff(WIRES[0]))
            self.assertEqual(c.cmd("UIDL 1"), "+OK 1 %s\r\n" % MSGS[0][0])
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        self.assertFalse(os.path.exists(new))
        self.assertEqual(len(os.listdir(cur)), N - 1)

    def test_twin_unique_names_never_reuse_a_uidl(self):
        """Two files with one Maildir unique name (other flags): each
        has its own UIDL, and deleting one never hands its UIDL to the
        other (a client leaving mail on the server would skip it)."""
        cur = os.path.join(self.srv.user_dir("carol"), "cur")
        os.makedirs(cur, exist_ok=True)
        for name, body, t in (("1000.a.host:2,S", b"A: 1\n\none\n", 1),
                              ("1000.a.host:2,T", b"A: 2\n\ntwo\n", 2)):
            p = os.path.join(cur, name)
            with open(p, "wb") as f:
                f.write(body)
            os.utime(p, (t, t))
        with Session(self.srv, "carol", "carolpw") as c:
            one = uidl_map(self, c)
            self.assertEqual(one[1], "1000.a.host")
            self.assertNotEqual(one[2], one[1])
            first, body = c.multi("RETR 2")
            self.assertEqual(body, b"A: 2\r\n\r\ntwo\r\n")
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        with Session(self.srv, "carol", "carolpw") as c:
            two = uidl_map(self, c)
            self.assertEqual(two, {1: one[2]})
            first, body = c.multi("RETR 1")
            self.assertEqual(body, b"A: 2\r\n\r\ntwo\r\n")

    def test_empty_file_is_one_empty_line(self):
        # Sent as Dovecot sends it, "\r\n" then ".\r\n"; LIST counts it.
        cur = os.path.join(self.srv.user_dir("carol"), "cur")
        os.makedirs(cur, exist_ok=True)
        open(os.path.join(cur, "1700000100.E1.test:2,"), "wb").close()
        with Session(self.srv, "carol", "carolpw") as c:
            self.assertEqual(c.cmd("STAT"), "+OK 1 2\r\n")
            self.assertEqual(c.cmd("LIST 1"), "+OK 1 2\r\n")
            first, body = c.multi("RETR 1")
            self.assertEqual((first, body), ("+OK 2 octets\r\n", b"\r\n"))
            first, body = c.multi("TOP 1 0")
            self.assertTrue(first.startswith("+OK"), first)
            self.assertEqual(body, b"\r\n")

    def path_of(self, n):
        return os.path.join(self.srv.user_dir("alice"), "cur",
                            self.cur()[n - 1])

    def relogin(self):
        """Logs in again once the previous session is gone (IN-USE
        retried for up to 5 s); returns the client."""
        deadline = time.monotonic() + 5
        while True:
            c = self.srv.client()
            c.greeting()
            c.cmd("USER alice")
            r = c.cmd("PASS secret")
            if r.startswith("+OK"):
                return c
            c.close()
            self.assertLess(time.monotonic(), deadline, r)
            time.sleep(0.05)

    def test_dele_hides_message(self):
        with Session(self.srv) as c:
            self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
            for cmd in ("LIST 2", "RETR 2", "TOP 2 0", "UIDL 2", "DELE 2"):
                r = c.cmd(cmd)
                self.assertTrue(r.startswith("-ERR"), "%s -> %r" % (cmd, r))
            self.assertEqual(parse_stat(self, c.cmd("STAT")),
                             (N - 1, TOTAL - len(WIRES[1])))
            nums = [int(l.split()[0]) for l in c.multi_lines("LIST")]
            self.assertEqual(nums, [i for i in range(1, N + 1) if i != 2])
            self.assertEqual(sorted(uidl_map(self, c)), nums)
            # numbers of the other messages do not change
            first, body = c.multi("RETR 3")
            self.assertEqual(unstuff(body), WIRES[2])

    def test_dele_twice_refused(self):
        with Session(self.srv) as c:
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
            self.assertTrue(c.cmd("DELE 1").startswith("-ERR"))

    def test_rset_restores(self):
        with Session(self.srv) as c:
            before = self.cur()
            # the first, a middle and the last message (a loop bound)
            for n in (1, 3, N):
                self.assertTrue(c.cmd("DELE %d" % n).startswith("+OK"))
            r = c.cmd("RSET")
            self.assertTrue(r.startswith("+OK"), r)
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))
            self.assertTrue(c.cmd("LIST 1").startswith("+OK"))
            first, body = c.multi("RETR 3")
            self.assertEqual(unstuff(body), WIRES[2])
        self.assertEqual(self.cur(), before)

    def test_message_file_closed_once(self):
        # A RETR read to its end closes the message file; the number
        # goes to the next client accepted.  Closing it again at QUIT
        # would cut that client off.
        a = self.srv.client()
        b = None
        try:
            a.login("alice", "secret")
            first, body = a.multi("RETR 1")
            self.assertEqual(unstuff(body), WIRES[0])
            b = self.srv.client()
            b.line()
            self.assertEqual(b.cmd("USER bob"), "+OK send PASS\r\n")
            self.assertTrue(a.quit().startswith("+OK"))
            self.assertEqual(b.cmd("USER bob"), "+OK send PASS\r\n")
            self.assertTrue(b.cmd("PASS hunter2").startswith("+OK"))
        finally:
            a.close()
            if b is not None:
                b.close()

    def test_counts_in_words(self):
        # The login, LIST, RSET and QUIT lines count in words: "1
        # message", "7 messages".
        c = self.srv.client()
        try:
            c.line()
            c.cmd("USER alice")
            self.assertEqual(c.cmd("PASS secret"), "+OK maildrop has %d "
                             "messages (%d octets)\r\n" % (N, TOTAL))
            for n in range(2, N + 1):
                self.assertTrue(c.cmd("DELE %d" % n).startswith("+OK"))
            first, _ = c.multi("LIST")
            self.assertEqual(first, "+OK 1 message (%d octets)\r\n"
                             % len(WIRES[0]))
            self.assertEqual(c.cmd("RSET"), "+OK maildrop has %d messages "
                             "(%d octets)\r\n" % (N, TOTAL))
            for n in range(2, N + 1):
                self.assertTrue(c.cmd("DELE %d" % n).startswith("+OK"))
            self.assertEqual(c.cmd("QUIT"),
                             "+OK pop3server signing off (1 message left)\r\n")
        finally:
            c.close()

    def test_dele_quit_removes_exactly_those_files(self):
        c = self.srv.client()
        c.login()
        names = self.cur()
        for n in (1, 4, 7):
            self.assertTrue(c.cmd("DELE %d" % n).startswith("+OK"))
        r = c.cmd("QUIT")
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(c.closed(5))
        c.close()
        self.assertEqual(self.cur(), [n for i, n in enumerate(names, 1)
                                      if i not in (1, 4, 7)])
        self.assertEqual(os.listdir(os.path.join(self.srv.user_dir("alice"),
                                                 "new")), [])
        c = self.relogin()
        self.assertEqual(parse_stat(self, c.cmd("STAT")),
                         (N - 3, TOTAL - len(WIRES[0]) - len(WIRES[3])
                          - len(WIRES[6])))
        c.quit()

    def test_dele_then_disconnect_removes_nothing(self):
        c = self.srv.client()
        c.login()
        names = self.cur()
        self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
        c.close()
        c = self.relogin()
        self.assertEqual(self.cur(), names)
        self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))
        c.quit()

    def test_dele_then_reset_connection_removes_nothing(self):
        c = self.srv.client()
        c.login()
        names = self.cur()
        self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        c.send("DELE 2\r\nQUI")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        c.close()                               # RST
        c = self.relogin()
        self.assertEqual(self.cur(), names)
        self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))
        c.quit()

    def test_dele_then_idle_timeout_removes_nothing(self):
        c = self.srv.client()
        c.login()
        names = self.cur()
        self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
        self.assertTrue(c.closed(8), "idle session not closed")
        c.close()
        c = self.relogin()
        self.assertEqual(self.cur(), names)
        self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))
        c.quit()

    def test_new_message_moved_to_cur_at_login(self):
        uid = "1700000007.M7P1.fixture"
        newdir = os.path.join(self.srv.user_dir("alice"), "new")
        self.assertEqual(os.listdir(newdir), [uid])
        with Session(self.srv) as c:
            self.assertEqual(os.listdir(newdir), [])
            moved = [n for n in self.cur() if n.startswith(uid)]
            self.assertEqual(len(moved), 1, self.cur())
            self.assertTrue(moved[0] == uid or moved[0].startswith(uid + ":"),
                            moved)
            i = msg_index(uid)
            r = c.cmd("UIDL %d" % i)
            self.assertTrue(r.startswith("+OK %d %s" % (i, uid)), r)
            first, body = c.multi("RETR %d" % i)
            self.assertEqual(unstuff(body), WIRES[i - 1])

    def test_uidl_stable_across_sessions_and_restart(self):
        with Session(self.srv) as c:
            one = uidl_map(self, c)
        with Session(self.srv) as c:
            two = uidl_map(self, c)
        self.srv.stop()
        self.srv.start()
        with Session(self.srv) as c:
            three = uidl_map(self, c)
        self.assertEqual(one, two)
        self.assertEqual(one, three)
        self.assertEqual(len(one), N)

    def test_message_removed_mid_session(self):
        with Session(self.srv) as c:
            os.unlink(self.path_of(3))
            r = c.cmd("RETR 3")
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
            r = c.cmd("TOP 3 0")
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            first, body = c.multi("RETR 1")
            self.assertEqual(unstuff(body), WIRES[0])

    def test_message_truncated_mid_session(self):
        with Session(self.srv) as c:
            p = self.path_of(1)
            os.truncate(p, os.path.getsize(p) // 2)
            c.send("RETR 1\r\nNOOP\r\n")
            r = c.line().decode()
            self.assertTrue(r.startswith("-ERR"), r)
            r = c.line().decode()
            self.assertTrue(r.startswith("+OK"), "NOOP after: %r" % r)
            first, body = c.multi("RETR 2")
            self.assertEqual(unstuff(body), WIRES[1])

    def test_order_is_mtime_then_name(self):
        cur = os.path.join(self.srv.user_dir("alice"), "cur")
        names = sorted(os.listdir(cur))
        # reverse the delivery times of cur/; the one in new/ keeps its own
        for i, name in enumerate(names):
            t = 1600000000 - i
            os.utime(os.path.join(cur, name), (t, t))
        # two files with the same mtime are in name order
        t = 1500000000
        os.utime(os.path.join(cur, names[0]), (t, t))
        os.utime(os.path.join(cur, names[1]), (t, t))
        want = [names[0].split(":")[0], names[1].split(":")[0]] + \
            [n.split(":")[0] for n in reversed(names[2:])] + \
            ["1700000007.M7P1.fixture"]
        with Session(self.srv) as c:
            uids = uidl_map(self, c)
        self.assertEqual([uids[i] for i in sorted(uids)], want)

    def test_non_regular_files_ignored(self):
        cur = os.path.join(self.srv.user_dir("alice"), "cur")
        new = os.path.join(self.srv.user_dir("alice"), "new")
        os.mkdir(os.path.join(cur, "1600000000.Mdir.x:2,"))
        os.mkfifo(os.path.join(cur, "1600000001.Mfifo.x:2,"))
        os.mkfifo(os.path.join(new, "1600000002.Mfifo.y"))
        os.symlink(os.path.join(cur, self.cur()[0]),
                   os.path.join(cur, "1600000003.Mlink.x:2,"))
        with Session(self.srv) as c:
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))
            self.assertEqual(list(uidl_map(self, c).values()),
                             [m[0] for m in MSGS])

    def test_unsafe_file_names_get_safe_unique_stable_uids(self):
        cur = os.path.join(self.srv.user_dir("alice"), "cur")
        long_a = "1700000010." + "a" * 80 + "X:2,"
        long_b = "1700000010." + "a" * 80 + "Y:2,"
        odd = ["1700000011.with space.x:2,", "1700000012.tab\there:2,",
               "1700000013.caf\xe9:2,", long_a, long_b]
        for name in odd:
            with open(os.path.join(cur.encode(),
                                   name.encode("latin-1")), "wb") as f:
                f.write(b"Subject: odd name\n\n" + name.encode("latin-1")
                        + b"\n")
        with Session(self.srv) as c:
            one = uidl_map(self, c)
            for i in one:
                r = c.cmd("UIDL %d" % i)
                self.assertEqual(r, "+OK %d %s\r\n" % (i, one[i]))
        self.assertEqual(len(one), N + len(odd))
        self.assertEqual(len(set(one.values())), len(one),
                         "UIDs not unique: %r" % one)
        self.srv.stop()
        self.srv.start()
        with Session(self.srv) as c:
            self.assertEqual(uidl_map(self, c), one)

    def test_mail_delivered_mid_session_waits_for_next_login(self):
        with Session(self.srv) as c:
            with open(os.path.join(self.srv.user_dir("alice"), "new",
                                   "1700000020.M20P1.late"), "wb") as f:
                f.write(b"Subject: late\n\nlate\n")
            self.assertEqual(parse_stat(self, c.cmd("STAT")), (N, TOTAL))
            self.assertTrue(c.cmd("RETR %d" % (N + 1)).startswith("-ERR"))
        with Session(self.srv) as c:
            n, _ = parse_stat(self, c.cmd("STAT"))
            self.assertEqual(n, N + 1)
            self.assertTrue(c.cmd("UIDL %d" % (N + 1)).startswith(
                "+OK %d 1700000020.M20P1.late" % (N + 1)))


if __name__ == "__main__":
    unittest.main()
