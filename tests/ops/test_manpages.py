"""The manual pages (docs/pop3server.8, docs/admin_monitor.1) format
without a single groff warning, render with man(1), and document every
option and command the programs' own help lists; the filter example
does what it says."""
import os
import re
import textwrap
import unittest

from opslib import (MONITOR_BIN, ROOT, SERVER_BIN, Server, clean_env, need,
                    run, tmpdir, unstuff)

PAGES = (("docs/pop3server.8", "POP3SERVER(8)"),
         ("docs/admin_monitor.1", "ADMIN_MONITOR(1)"))


def render(page):
    """The page as man(1) renders it (plain text, 80 columns)."""
    r = run([need("man"), "-P", "cat", "-l", os.path.join(ROOT, page)],
            env=clean_env(MANPAGER="cat", MANWIDTH="80"))
    return r


def section(text, name):
    """The body of a top-level section of a rendered page."""
    m = re.search(r"(?ms)^%s\n(.*?)(?=^[A-Z][A-Z ]+\n|\Z)" % re.escape(name),
                  text)
    assert m, "no %s section" % name
    return m.group(1)


class ManPages(unittest.TestCase):

    def test_groff_ww_no_warning(self):
        groff = need("groff")
        for page, title in PAGES:
            with self.subTest(page=page):
                r = run([groff, "-man", "-Tutf8", "-ww",
                         os.path.join(ROOT, page)])
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(r.stderr, "", "groff warnings:\n%r" % r)
                # grotty overstrikes bold and underline: drop that.
                text = re.sub(r".\x08", "", r.stdout)
                self.assertIn(title, text)
                self.assertRegex(text, r"(?m)^NAME$")

    def test_man_l_renders(self):
        for page, title in PAGES:
            with self.subTest(page=page):
                r = render(page)
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(r.stderr, "", r)
                first = r.stdout.splitlines()[0]
                self.assertTrue(first.startswith(title) and
                                first.endswith(title), first)
                for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS",
                            "EXIT STATUS", "SEE ALSO"):
                    self.assertRegex(r.stdout, r"(?m)^%s$" % sec)

    def test_pop3server_page_documents_every_option(self):
        h = run([SERVER_BIN, "-h"])
        self.assertEqual(h.rc, 0, h)
        opts = re.findall(r"(?m)^\s+(-[-a-zA-Z]+)", h.stdout)
        opts += [o for o in ("-v", "-h") if o not in opts]
        self.assertGreaterEqual(len(opts), 16, h.stdout)
        r = render("docs/pop3server.8")
        self.assertEqual(r.rc, 0, r)
        body = section(r.stdout, "OPTIONS")
        for o in opts:
            with self.subTest(option=o):
                self.assertRegex(body, r"(?m)^ {7}(\S+, )?%s\b" % re.escape(o),
                                 "%s not an item of OPTIONS" % o)

    def test_admin_monitor_page_documents_every_command(self):
        h = run([MONITOR_BIN, "--help"])
        self.assertEqual(h.rc, 0, h)
        cmds = re.findall(r"(?m)^\s+(-[A-Z_]+)\b", h.stdout + h.stderr)
        self.assertGreaterEqual(len(cmds), 15, h)
        r = render("docs/admin_monitor.1")
        self.assertEqual(r.rc, 0, r)
        body = section(r.stdout, "COMMANDS")
        for c in cmds:
            with self.subTest(command=c):
                self.assertRegex(body, r"(?m)^ {7}%s\b" % re.escape(c),
                                 "%s not an item of COMMANDS" % c)

    def test_filter_example_drops_a_folded_field(self):
        # The example as printed: a field's continuation lines go with
        # it, and a message stored with CR LF is handled the same.
        text = section(render("docs/pop3server.8").stdout, "EXAMPLES")
        command = re.search(r"-t '(awk -f (\S+))'", text)
        program = re.search(r"holds:\n\n(.*?)\n\n", text, re.S)
        self.assertTrue(command and program, text)
        script = os.path.join(tmpdir(self), "example.awk")
        with open(script, "w") as f:
            f.write(textwrap.dedent(program.group(1)) + "\n")
        stored = (b"From: a@b\nX-Spam-Report: \n\t* 0.1 RCVD blah\n"
                  b"\t* 1.0 FOO bar\nSubject: hi\n\nX-Spam-Report: body\n")
        want = (b"From: a@b\r\nSubject: hi\r\n\r\nX-Spam-Report: body"
                b"\r\n")
        filt = command.group(1).replace(command.group(2), script)
        with Server(mail=None, args=["-t", filt]) as s:
            cur = os.path.join(s.maildir, "alice", "cur")
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(s.maildir, "alice", sub))
            with open(os.path.join(cur, "1.lf:2,"), "wb") as f:
                f.write(stored)
            with open(os.path.join(cur, "2.crlf:2,"), "wb") as f:
                f.write(stored.replace(b"\n", b"\r\n"))
            c = s.client()
            try:
                c.login()
                for n in (1, 2):
                    with self.subTest(message=n):
                        first, body = c.multi("RETR %d" % n)
                        self.assertTrue(first.startswith("+OK"), first)
                        self.assertEqual(unstuff(body), want)
            finally:
                c.close()
