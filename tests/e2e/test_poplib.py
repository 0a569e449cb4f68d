"""End-to-end tests with Python's poplib.

What poplib does to a message: retr()/top() return (resp, lines, octets);
each line has its line end stripped (CRLF, or a bare LF), lines starting
with ".." are un-stuffed to ".", the terminating "." is dropped, and
octets counts the bytes of the body as sent minus one per un-stuffed dot,
that is the size LIST must report.  So for a stored message the lines must
be wire_form(file).split(CRLF) without the last (empty) element, and
octets must be len(wire_form(file)).

poplib refuses lines longer than poplib._MAXLINE (2048) with
error_proto('line too long'); POP3 itself (RFC 1939) has no limit on
message lines, so the tests raise _MAXLINE to 1 MiB for fixture messages
with long lines (documented client limit, not a server defect).
"""
import os
import poplib

from clientlib import (E2ETest, USER, PASSWORD, REQUIRED_CAPA, snapshot,
                       maildrop_paths, top_expected, b64_plain, delivery_order)

poplib._MAXLINE = 1 << 20


def lines_of(wire):
    return wire.split(b"\r\n")[:-1]


class PoplibTests(E2ETest):

    def setUp(self):
        super().setUp()
        self.s = self.server()

    def connect(self, login=True):
        p = poplib.POP3("127.0.0.1", self.s.port, timeout=10)
        self.addCleanup(p.close)
        if login:
            self.assertTrue(p.user(USER).startswith(b"+OK"))
            self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK"))
        return p

    def test_greeting_and_capa(self):
        p = self.connect(login=False)
        self.assertTrue(p.getwelcome().startswith(b"+OK"))
        caps = p.capa()
        for c in REQUIRED_CAPA:
            self.assertIn(c, caps, "CAPA lacks %s: %r" % (c, caps))
        self.assertIn("PLAIN", caps["SASL"])
        self.assertEqual(caps["EXPIRE"], ["NEVER"])
        self.assertTrue(caps["IMPLEMENTATION"], "IMPLEMENTATION needs a name")
        p.quit()

    def test_stat_list_uidl(self):
        msgs = snapshot(self.s)
        p = self.connect()
        self.assertEqual(p.stat(), (len(msgs), sum(len(m.wire) for m in msgs)))
        resp, lines, _ = p.list()
        self.assertTrue(resp.startswith(b"+OK"))
        self.assertEqual(lines, [b"%d %d" % (m.num, len(m.wire)) for m in msgs])
        resp, lines, _ = p.uidl()
        self.assertEqual(lines, [b"%d %s" % (m.num, m.uid.encode()) for m in msgs])
        # Numbered in delivery order (mtime, then name), new/ included.
        self.assertEqual([m.uid for m in msgs], delivery_order(self.s))
        for m in msgs:
            # "LIST n" / "UIDL n" echo n, single spaces.
            self.assertEqual(p.list(m.num), b"+OK %d %d" % (m.num, len(m.wire)))
            self.assertEqual(p.uidl(m.num), b"+OK %d %s" % (m.num, m.uid.encode()))
        self.assertTrue(p.quit().startswith(b"+OK"))

    def test_retr_every_message(self):
        msgs = snapshot(self.s)
        p = self.connect()
        for m in msgs:
            with self.subTest(msg=m.name):
                resp, lines, octets = p.retr(m.num)
                self.assertTrue(resp.startswith(b"+OK"), resp)
                self.assertEqual(lines, lines_of(m.wire))
                self.assertEqual(octets, len(m.wire), "octets received vs wire size")
        p.quit()
        # RETR never deletes.
        self.assertEqual(len(maildrop_paths(self.s)), len(msgs))

    def test_top_0(self):
        msgs = snapshot(self.s)
        p = self.connect()
        for m in msgs:
            with self.subTest(msg=m.name):
                resp, lines, _ = p.top(m.num, 0)
                self.assertTrue(resp.startswith(b"+OK"), resp)
                self.assertEqual(lines, lines_of(top_expected(m.wire, 0)))
                resp, lines, _ = p.top(m.num, 1)
                self.assertEqual(lines, lines_of(top_expected(m.wire, 1)))
        p.quit()

    def test_dele_quit_removes_file(self):
        msgs = snapshot(self.s)
        p = self.connect()
        self.assertTrue(p.dele(1).startswith(b"+OK"))
        self.assertTrue(os.path.exists(msgs[0].path), "removed at DELE, before QUIT")
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.assertFalse(os.path.exists(msgs[0].path), "still there after QUIT")
        for m in msgs[1:]:
            self.assertTrue(os.path.exists(m.path), "%s removed too" % m.name)
        p = self.connect()
        self.assertEqual(p.stat()[0], len(msgs) - 1)
        p.quit()

    def test_rset_undoes_dele(self):
        msgs = snapshot(self.s)
        p = self.connect()
        for m in msgs:
            p.dele(m.num)
        self.assertEqual(p.stat()[0], 0)
        p.rset()
        self.assertEqual(p.stat()[0], len(msgs))
        p.quit()
        self.assertEqual(len(maildrop_paths(self.s)), len(msgs))

    def test_auth_plain_initial_response(self):
        msgs = snapshot(self.s)
        p = self.connect(login=False)
        resp = p._shortcmd("AUTH PLAIN " + b64_plain())
        self.assertTrue(resp.startswith(b"+OK"), resp)
        self.assertEqual(p.stat()[0], len(msgs))
        p.quit()

    def test_auth_plain_continuation(self):
        msgs = snapshot(self.s)
        p = self.connect(login=False)
        resp = p._shortcmd("AUTH PLAIN")
        self.assertTrue(resp.startswith(b"+ ") or resp == b"+", resp)
        p._putcmd(b64_plain())
        resp = p._getresp()
        self.assertTrue(resp.startswith(b"+OK"), resp)
        self.assertEqual(p.stat()[0], len(msgs))
        p.quit()

    def test_bad_password(self):
        p = self.connect(login=False)
        p.user(USER)
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("wrong")
        text = str(cm.exception)
        self.assertIn("-ERR [AUTH]", text)
        for word in ("lock", "wait", "in-use"):
            self.assertNotIn(word, text.lower(), "fetchmail would read this as busy")
