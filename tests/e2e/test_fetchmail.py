"""End-to-end tests with fetchmail (Debian 12: fetchmail 6.4.37).

fetchmail delivers each message to an MDA (a script that writes it to
its own numbered file) and runs with:
  --invisible      no Received: header of its own (added by default);
  no rewrite       addresses in the header left alone;
  no stripcr       CRLF line ends kept (with an MDA fetchmail by default
                   strips EVERY CR, bare ones inside lines too);
  bad-header accept  by default fetchmail skips (and leaves on the server)
                   a message whose header has a line that is not a field;
  sslproto ""      fetchmail 6.4 otherwise tries STLS even when CAPA does
                   not offer it, and gives up (exit 2) when it fails;
  set no bouncemail, --nosyslog, FETCHMAILHOME/HOME in a temporary folder.
What fetchmail still changes is modelled in clientlib.fetchmail_check:
a leading Unix "From " line is dropped, a headerless message gets a
"FETCHMAIL-DAEMON" header, a header-only message gets the blank line that
ends a header.  Everything else must be the wire form byte for byte.

Exit codes (fetchmail(1) EXIT CODES): 0 = one or more messages
retrieved, 1 = no mail awaiting retrieval; anything else is a failure.
With `keep` and without `fetchall`, fetchmail asks UIDL and keeps the seen
UIDs in --idfile; it then peeks with "TOP n 99999999" instead of RETR.
With `fetchall` (no uidl) it uses "LIST n" + "RETR n".
"""
import os
import poplib

from clientlib import (E2ETest, USER, PASSWORD, need, run, snapshot,
                       maildrop_paths, add_message, fetchmail_check, no_busy,
                       Msg)


class FetchmailTests(E2ETest):

    def setUp(self):
        super().setUp()
        self.fetchmail = need("fetchmail")
        self.s = self.server()
        self.idfile = os.path.join(self.wd.path, "fetchids")

    def rcfile(self, port=None, keep=True, fetchall=True, uidl=False,
               password=PASSWORD):
        server_opts = "protocol pop3 timeout 20 bad-header accept"
        if uidl:
            server_opts += " uidl"
        user_opts = 'sslproto "" %s %s no rewrite no stripcr' % (
            "keep" if keep else "no keep", "fetchall" if fetchall else "no fetchall")
        text = ("set no bouncemail\nset no spambounce\n"
                'poll 127.0.0.1 service %d %s\n'
                '  user "%s" password "%s" is "%s" here %s\n'
                '  mda "%s"\n') % (port or self.s.port, server_opts, USER, password,
                                   USER, user_opts, self.wd.mda())
        return self.wd.write("fetchmailrc", text, 0o600)

    def fetch(self, rc, ok=(0,), busy_ok=False):
        # Its own lock file: as root, fetchmail locks /var/run, so
        # another fetchmail on the host would make it exit 8.
        r = run([self.fetchmail, "--nosyslog", "--invisible", "-v",
                 "--pidfile", os.path.join(self.wd.path, "fetchmail.pid"),
                 "--idfile", self.idfile, "-f", rc], env=self.wd.env)
        self.check_run(r, ok)
        if not busy_ok:
            no_busy(self, r.text(), "fetchmail")
        return r

    def check_delivered(self, msgs, r):
        got = self.wd.delivered()
        self.assertEqual(len(got), len(msgs),
                         "delivered %d of %d messages\n%s" % (len(got), len(msgs), r.describe()))
        for m, g in zip(msgs, got):
            with self.subTest(msg=m.name):
                fetchmail_check(self, m, g)

    def test_fetchall_keep_exact(self):
        msgs = snapshot(self.s)
        r = self.fetch(self.rcfile())
        self.assertIn("RETR", r.text())
        self.check_delivered(msgs, r)
        # keep: everything still on the server.
        self.assertEqual(sorted(maildrop_paths(self.s)), sorted(m.path for m in msgs))

    def test_uidl_stable_across_runs_and_restart(self):
        msgs = snapshot(self.s)
        rc = self.rcfile(keep=True, fetchall=False, uidl=True)
        r = self.fetch(rc)
        self.assertIn("UIDL", r.text())
        self.check_delivered(msgs, r)
        with open(self.idfile) as f:
            ids = f.read()
        for m in msgs:
            self.assertIn(m.uid, ids)
        # Same UIDs after a server restart: nothing new to fetch (exit 1).
        self.restart(self.s)
        self.wd.clear()
        r = self.fetch(rc, ok=(1,))
        self.assertEqual(self.wd.delivered(), [], "fetched again:\n" + r.describe())
        # One new message (in new/): exactly that one is fetched.
        data = b"From: e2e@example.org\nSubject: added between runs\n\n.dot\n..two\nend\n"
        path = add_message(self.s, "2000000000.M1P1.e2e", data)
        new = Msg(len(msgs) + 1, "2000000000.M1P1.e2e", 0, path, data)
        r = self.fetch(rc, ok=(0,))
        got = self.wd.delivered()
        self.assertEqual(len(got), 1, "expected only the new message\n" + r.describe())
        fetchmail_check(self, new, got[0])
        self.wd.clear()
        self.fetch(rc, ok=(1,))
        self.assertEqual(self.wd.delivered(), [])

    def test_nokeep_deletes_after_quit(self):
        msgs = snapshot(self.s)
        px = self.quit_watch(self.s, msgs)
        r = self.fetch(self.rcfile(port=px.port, keep=False))
        self.assertIn("DELE", r.text())
        self.assert_gone_only_at_quit(px, self.s, r)
        self.check_delivered(msgs, r)

    def test_locked_maildrop_is_busy_then_works(self):
        msgs = snapshot(self.s)
        rc = self.rcfile(keep=False)
        p = poplib.POP3("127.0.0.1", self.s.port, timeout=10)
        self.addCleanup(p.close)
        p.user(USER)
        p.pass_(PASSWORD)
        # The maildrop is locked by that session: "-ERR [IN-USE] ...", which
        # fetchmail reports as "lock busy", exit 9 (fetchmail(1) EXIT CODES).
        r = self.fetch(rc, ok=(9,), busy_ok=True)
        self.assertEqual(self.wd.delivered(), [], r.describe())
        self.assertEqual(sorted(maildrop_paths(self.s)), sorted(m.path for m in msgs))
        p.quit()
        r = self.fetch(rc)
        self.check_delivered(msgs, r)
        self.assertEqual(maildrop_paths(self.s), [])

    def test_wrong_password_is_auth_error_not_busy(self):
        msgs = snapshot(self.s)
        # Exit 3 = authentication failed; 9 would mean fetchmail read the
        # -ERR text as "lock busy" (and would retry forever in daemon mode).
        r = self.fetch(self.rcfile(password="wrong"), ok=(3,))
        self.assertEqual(self.wd.delivered(), [], r.describe())
        self.assertEqual(len(maildrop_paths(self.s)), len(msgs))
