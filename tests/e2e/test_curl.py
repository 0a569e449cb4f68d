"""End-to-end tests with curl's pop3:// support.

What curl does to a message (checked empirically with curl 7.88.1, the
Debian 12 package): `curl pop3://.../N` writes the RETR body exactly as
it came on the wire, CRLF line ends kept, and it DOES un-stuff dot lines
(checked: this curl turns a stuffed ".." line start back into "."; very
old curl versions are reported not to), and it
drops the terminating ".CRLF".  So its output must equal wire_form(file)
byte for byte.  With -X (custom command) it prints the multi-line reply
body the same way (LIST/UIDL lines with CRLF).  curl logs in with AUTH
PLAIN when CAPA offers SASL PLAIN (continuation "+ " form; with --sasl-ir
the initial-response form); it never uses USER/PASS against this server.
curl's -I makes a custom command single-line (DELE); curl sends QUIT
when it closes the connection.

One curl quirk (its end-of-body scanner starts as if a CRLF preceded the
body): an EMPTY multi-line body, "+OK ...\r\n.\r\n", is printed as a
single "\r\n" instead of nothing.  curl_body() models that, for empty
LIST/UIDL listings and empty messages alike.
"""
import os

from clientlib import (E2ETest, Client, USER, PASSWORD, need, run, snapshot,
                       empty_maildrop, maildrop_paths, top_expected)

CURL_TIMEOUT = 10  # a hang (e.g. on an empty LIST) is a failure


def curl_body(body):
    """What curl prints for a multi-line reply whose un-stuffed body is body."""
    return body if body else b"\r\n"


class CurlTests(E2ETest):

    def setUp(self):
        super().setUp()
        self.curl = need("curl")
        self.s = self.server()

    def curl_cmd(self, path="/", *args, port=None):
        url = "pop3://%s:%s@127.0.0.1:%d%s" % (USER, PASSWORD, port or self.s.port, path)
        # -q: ignore ~/.curlrc; no proxy; loopback only; hard time limit.
        return [self.curl, "-q", "-s", "-S", "--noproxy", "*",
                "--max-time", str(CURL_TIMEOUT)] + list(args) + [url]

    def curl_ok(self, path="/", *args, port=None):
        r = run(self.curl_cmd(path, *args, port=port), timeout=CURL_TIMEOUT + 5,
                env=self.wd.env)
        self.check_run(r)
        return r.out

    def raw_multiline(self, command):
        c = Client(self.s.port)
        try:
            c.login(USER, PASSWORD)
            r = c.cmd(command)
            self.assertTrue(r.startswith("+OK"), "%s: %r" % (command, r))
            body = c.multiline()
            c.cmd("QUIT")
            return body
        finally:
            c.close()

    def test_retr_every_message_is_wire_form(self):
        for m in snapshot(self.s):
            with self.subTest(msg=m.name):
                got = self.curl_ok("/%d" % m.num)
                self.assertEqual(got, curl_body(m.wire), "curl /%d (%s)" % (m.num, m.name))
                self.assertEqual(len(m.wire), m.size, "LIST size vs bytes on the wire")

    def test_list_equals_LIST(self):
        msgs = snapshot(self.s)
        got = self.curl_ok("/")
        self.assertEqual(got, curl_body(self.raw_multiline("LIST")))
        want = b"".join(b"%d %d\r\n" % (m.num, len(m.wire)) for m in msgs)
        self.assertEqual(got, curl_body(want))

    def test_uidl_listing(self):
        msgs = snapshot(self.s)
        got = self.curl_ok("/", "-X", "UIDL")
        want = b"".join(b"%d %s\r\n" % (m.num, m.uid.encode()) for m in msgs)
        self.assertEqual(got, curl_body(want))
        for m in msgs:
            self.assertEqual(m.uid, m.name.split(":")[0], "UID is the Maildir unique name")

    def test_top_0_and_top_huge(self):
        for m in snapshot(self.s):
            with self.subTest(msg=m.name):
                got = self.curl_ok("/", "-X", "TOP %d 0" % m.num)
                self.assertEqual(got, curl_body(top_expected(m.wire, 0)), "TOP %d 0" % m.num)
                # fetchmail peeks with TOP n 99999999: the whole message.
                got = self.curl_ok("/", "-X", "TOP %d 99999999" % m.num)
                self.assertEqual(got, curl_body(m.wire), "TOP %d 99999999" % m.num)

    def test_sasl_initial_response(self):
        msgs = snapshot(self.s)
        got = self.curl_ok("/%d" % msgs[0].num, "--sasl-ir")
        self.assertEqual(got, curl_body(msgs[0].wire))

    def test_dele_removes_file_only_after_quit(self):
        msgs = snapshot(self.s)
        first = msgs[0]
        others = [m.path for m in msgs[1:]]
        seen = {}

        def before_quit():
            # curl got +OK for DELE 1 and is about to QUIT: nothing removed yet.
            seen["exists"] = os.path.exists(first.path)

        px = self.proxy(self.s.port, before_quit)
        self.curl_ok("/", "-I", "-X", "DELE 1", port=px.port)
        self.assertFalse(px.errors, px.errors)
        self.assertEqual(px.quit_seen, 1, "curl sent no QUIT: %r" % px.commands())
        self.assertTrue(seen.get("exists"), "message file removed before QUIT")
        self.assertFalse(os.path.exists(first.path), "DELE 1 + QUIT left the file")
        for p in others:
            self.assertTrue(os.path.exists(p), "%s removed too" % p)
        self.assertEqual(len(maildrop_paths(self.s)), len(msgs) - 1)

    def test_empty_maildrop_does_not_hang(self):
        empty_maildrop(self.s)
        # An empty multi-line reply is "+OK ...\r\n.\r\n": curl must finish
        # (old curl hung here); it prints "\r\n" for it (see curl_body).
        self.assertEqual(self.curl_ok("/"), curl_body(b""))
        self.assertEqual(self.curl_ok("/", "-X", "UIDL"), curl_body(b""))
        self.assertEqual(snapshot(self.s, allow_empty=True), [])
