"""End-to-end tests with mpop (Debian 12: mpop 1.4.18).

mpop runs from a config file (mode 0600: it holds the password) with
`tls off`, `received_header off` and delivery to an MDA (a script that
writes each message to its own numbered file) or to a Maildir.
What mpop changes in a message (checked empirically):
  * by default (received_header on) it prepends a Received: header;
    the tests turn that off;
  * it delivers with LF line ends: every CRLF becomes LF; bare CRs inside
    a line are kept (clientlib.mpop_expected);
  * it un-stuffs dot lines and drops the terminating ".".
Nothing else: no header is added or changed, headerless and header-only
messages are delivered as they are.  mpop exits 0 (EX_OK) also when there
is no new mail.  It runs CAPA, auth, STAT, LIST, UIDL, then RETR (and DELE
unless keep), then QUIT; with pipelining auto it pipelines when CAPA
advertises PIPELINING.
"""
import os

from clientlib import (E2ETest, USER, PASSWORD, need, run, snapshot,
                       maildrop_paths, add_message, mpop_expected, Msg)


class MpopTests(E2ETest):

    def setUp(self):
        super().setUp()
        self.mpop = need("mpop")
        self.s = self.server()
        self.uidls = os.path.join(self.wd.path, "uidls")

    def config(self, port=None, auth="user", keep=True, pipelining="auto",
               delivery=None):
        text = ("defaults\n"
                "tls off\n"
                "timeout 20\n"
                "received_header off\n"
                "account e2e\n"
                "host 127.0.0.1\n"
                "port %d\n"
                "user %s\n"
                "password %s\n"
                "auth %s\n"
                "delivery %s\n"
                "keep %s\n"
                "uidls_file %s\n"
                "pipelining %s\n") % (
            port or self.s.port, USER, PASSWORD, auth,
            delivery or 'mda "%s"' % self.wd.mda(), "on" if keep else "off",
            self.uidls, pipelining)
        return self.wd.write("mpoprc", text, 0o600)

    def fetch(self, cfg, *args, ok=(0,)):
        r = run([self.mpop, "-C", cfg, "--debug"] + list(args) + ["e2e"],
                env=self.wd.env)
        self.check_run(r, ok)
        return r

    def check_delivered(self, msgs, r):
        got = self.wd.delivered()
        self.assertEqual(len(got), len(msgs),
                         "delivered %d of %d\n%s" % (len(got), len(msgs), r.describe()))
        for m, g in zip(msgs, got):
            with self.subTest(msg=m.name):
                self.assertEqual(g, mpop_expected(m.wire), "%r after mpop" % m)

    def test_auth_user_pipelining_auto_exact(self):
        msgs = snapshot(self.s)
        px = self.proxy(self.s.port)
        r = self.fetch(self.config(port=px.port), "--keep=on", "--auth=user")
        cmds = px.commands()
        self.assertIn("USER %s" % USER, cmds)
        self.assertTrue(px.pipelined(),
                        "CAPA advertises PIPELINING but mpop did not pipeline: %r"
                        % px.chunks[:20])
        self.check_delivered(msgs, r)
        self.assertEqual(sorted(maildrop_paths(self.s)), sorted(m.path for m in msgs))

    def test_auth_plain(self):
        msgs = snapshot(self.s)
        px = self.proxy(self.s.port)
        r = self.fetch(self.config(port=px.port, auth="plain"), "--auth=plain")
        self.assertIn("AUTH PLAIN", px.commands())
        self.check_delivered(msgs, r)

    def test_pipelining_off(self):
        msgs = snapshot(self.s)
        px = self.proxy(self.s.port)
        r = self.fetch(self.config(port=px.port, pipelining="off"))
        self.assertFalse(px.pipelined(), "pipelined although told not to")
        self.check_delivered(msgs, r)

    def test_second_run_fetches_nothing_new(self):
        msgs = snapshot(self.s)
        cfg = self.config()
        r = self.fetch(cfg)
        self.check_delivered(msgs, r)
        with open(self.uidls, "rb") as f:
            uidls = f.read().decode("latin-1")
        for m in msgs:
            self.assertIn(m.uid, uidls)
        # After a server restart the UIDs are the same: nothing new.
        self.restart(self.s)
        self.wd.clear()
        r = self.fetch(cfg)
        self.assertEqual(self.wd.delivered(), [], "fetched again\n" + r.describe())
        self.assertIn("new: no messages", r.text())
        # A new message arrives (in new/): only that one is fetched.
        data = b"From: e2e@example.org\nSubject: new\n\n.\n.x\nend"
        path = add_message(self.s, "2000000001.M2P2.e2e", data)
        new = Msg(len(msgs) + 1, "2000000001.M2P2.e2e", 0, path, data)
        r = self.fetch(cfg)
        self.assertEqual(self.wd.delivered(), [mpop_expected(new.wire)], r.describe())

    def test_keep_off_deletes_after_quit(self):
        msgs = snapshot(self.s)
        px = self.quit_watch(self.s, msgs)
        r = self.fetch(self.config(port=px.port, keep=False), "--keep=off")
        self.assertTrue(any(c.startswith("DELE ") for c in px.commands()), px.commands())
        self.assert_gone_only_at_quit(px, self.s, r)
        self.check_delivered(msgs, r)

    def test_maildir_delivery(self):
        msgs = snapshot(self.s)
        md = os.path.join(self.wd.path, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        r = self.fetch(self.config(delivery="maildir %s" % md))
        got = []
        for name in os.listdir(os.path.join(md, "new")):
            with open(os.path.join(md, "new", name), "rb") as f:
                got.append(f.read())
        self.assertEqual(sorted(got), sorted(mpop_expected(m.wire) for m in msgs),
                         r.describe())
