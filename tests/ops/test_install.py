"""make install / make uninstall (Makefile; docs/operations.md 2.1): the
files land where the documentation says, with the right modes, the
installed programs run, uninstall removes exactly them, and PREFIX,
MANDIR and DOCDIR move the tree.  make always runs in the source tree
with a temporary DESTDIR, never on the real system."""
import os
import re
import stat
import unittest

from opslib import MONITOR_BIN, ROOT, SERVER_BIN, clean_env, need, run, tmpdir

EXAMPLES = ("pop3server.service", "stunnel-pop3s.conf", "fetchmailrc")


def naming(prefix, mandir, docdir, readme=False):
    """What make install does to a text file: the default install's
    paths become this one's; in the README, links into docs/ point
    beside it (the docs are installed next to it), and the programs and
    manual pages are named as installed, not in the source tree."""
    def edit(data):
        for old, new in (("/usr/local/share/doc/pop3server/", docdir + "/"),
                         ("/usr/local/share/man/", mandir + "/"),
                         ("/usr/local/sbin/", prefix + "/sbin/"),
                         ("/usr/local/bin/", prefix + "/bin/")):
            data = data.replace(old.encode(), new.encode())
        if not readme:
            return data
        data = re.sub(rb"(?m)^bin/", b"", data.replace(b"](docs/", b"]("))
        return re.sub(rb"man -l docs/([a-z0-9_]*)\.([18])", rb"man \2 \1",
                      data)
    return edit


def installed(prefix, mandir=None, docdir=None):
    """{path relative to DESTDIR: (source file, mode, edit)} make install
    must create for this PREFIX (MANDIR/DOCDIR default under it); edit
    turns the source's bytes into the installed ones (None: a copy)."""
    mandir = mandir or prefix + "/share/man"
    docdir = docdir or prefix + "/share/doc/pop3server"
    text = naming(prefix, mandir, docdir)
    files = {
        # The programs of the build under test (build-san/bin with
        # SANITIZE=1, which make install takes too).
        prefix + "/sbin/pop3server": (SERVER_BIN, 0o755, None),
        prefix + "/bin/admin_monitor": (MONITOR_BIN, 0o755, None),
        mandir + "/man8/pop3server.8": ("docs/pop3server.8", 0o644, text),
        mandir + "/man1/admin_monitor.1": ("docs/admin_monitor.1", 0o644,
                                           text),
        docdir + "/README.md": ("README.md", 0o644,
                                naming(prefix, mandir, docdir, True)),
    }
    for n in EXAMPLES:
        files[docdir + "/examples/" + n] = ("docs/examples/" + n, 0o644,
                                            text)
    for n in os.listdir(os.path.join(ROOT, "docs")):
        if n.endswith(".md"):
            files[docdir + "/" + n] = ("docs/" + n, 0o644, text)
    return {k.lstrip("/"): v for k, v in files.items()}


def regular_files(top):
    out = set()
    for d, _, files in os.walk(top):
        for n in files:
            out.add(os.path.relpath(os.path.join(d, n), top))
    return out


class Install(unittest.TestCase):

    def setUp(self):
        self.make = need("make")
        self.dest = tmpdir(self, "ops-destdir-")

    def make_run(self, *args):
        r = run([self.make, "--no-print-directory"] + list(args)
                + ["DESTDIR=" + self.dest], cwd=ROOT, env=clean_env(),
                timeout=120)
        self.assertEqual(r.rc, 0, "make %s failed:\n%r" % (args, r))
        return r

    def check_tree(self, want):
        for rel, (src, mode, edit) in sorted(want.items()):
            p = os.path.join(self.dest, rel)
            with self.subTest(file=rel):
                self.assertTrue(os.path.isfile(p), "%s not installed" % rel)
                st = os.stat(p)
                self.assertEqual(stat.S_IMODE(st.st_mode), mode,
                                 "%s mode %o" % (rel, stat.S_IMODE(st.st_mode)))
                with open(p, "rb") as a, open(os.path.join(ROOT, src), "rb") as b:
                    got, source = a.read(), b.read()
                if edit is not None:
                    source = edit(source)
                self.assertTrue(got == source,
                                "%s differs from %s" % (rel, src))
        extra = regular_files(self.dest) - set(want)
        self.assertEqual(extra, set(), "make install put unexpected files")

    def test_install_default_prefix(self):
        self.make_run("install")
        want = installed("/usr/local")
        # The paths the issue and operations.md name, spelled out.
        for rel in ("usr/local/sbin/pop3server", "usr/local/bin/admin_monitor",
                    "usr/local/share/man/man8/pop3server.8",
                    "usr/local/share/man/man1/admin_monitor.1",
                    "usr/local/share/doc/pop3server/examples/pop3server.service",
                    "usr/local/share/doc/pop3server/examples/stunnel-pop3s.conf",
                    "usr/local/share/doc/pop3server/examples/fetchmailrc"):
            self.assertIn(rel, want)
        self.check_tree(want)
        self.assertEqual(os.listdir(self.dest), ["usr"],
                         "files outside DESTDIR/usr")

    def test_installed_programs_run(self):
        self.make_run("install")
        server = os.path.join(self.dest, "usr/local/sbin/pop3server")
        r = run([server, "-v"])
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.stdout, r"^pop3server \d+\.\d+", r)
        r = run([server, "-h"])
        self.assertEqual(r.rc, 0, r)
        for opt in ("-p", "-l", "-P", "-L", "-d", "-u", "-U", "-t", "-T",
                    "-m", "-g", "-v", "-h", "--log", "--allow-root",
                    "--filter-timeout"):
            self.assertRegex(r.stdout, r"(?m)^\s+%s\b" % opt,
                             "-h does not list %s:\n%s" % (opt, r.stdout))
        mon = os.path.join(self.dest, "usr/local/bin/admin_monitor")
        r = run([mon, "--help"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("usage: admin_monitor", r.stdout + r.stderr)
        self.assertIn("-ADD_USER", r.stdout + r.stderr)

    def test_installed_man_pages_found_by_man(self):
        man = need("man")
        self.make_run("install")
        mandir = os.path.join(self.dest, "usr/local/share/man")
        for sec, page, title in (("8", "pop3server", "POP3SERVER(8)"),
                                 ("1", "admin_monitor", "ADMIN_MONITOR(1)")):
            with self.subTest(page=page):
                r = run([man, "-P", "cat", "-M", mandir, sec, page],
                        env=clean_env(MANWIDTH="80"))
                self.assertEqual(r.rc, 0, r)
                self.assertIn(title, r.stdout)
                self.assertIn("NAME", r.stdout)

    def test_installed_texts_name_this_install(self):
        # PREFIX=/usr: the unit file must start the installed program,
        # the man pages name the installed docs, and the README's links
        # reach the docs installed beside it.
        self.make_run("install", "PREFIX=/usr")
        doc = os.path.join(self.dest, "usr/share/doc/pop3server")
        with open(os.path.join(doc, "examples/pop3server.service")) as f:
            self.assertIn("ExecStart=/usr/sbin/pop3server ", f.read())
        with open(os.path.join(self.dest,
                               "usr/share/man/man8/pop3server.8")) as f:
            page = f.read()
        self.assertIn("/usr/share/doc/pop3server/", page)
        self.assertNotIn("/usr/local/", page)
        with open(os.path.join(doc, "README.md")) as f:
            readme = f.read()
        # and it names the installed programs and manual pages
        self.assertIn("man 8 pop3server", readme)
        self.assertNotIn("man -l docs/", readme)
        self.assertNotRegex(readme, r"(?m)^bin/")
        links = re.findall(r"\]\(([^)#]+)", readme)
        self.assertTrue(links)
        for link in links:
            self.assertTrue(os.path.isfile(os.path.join(doc, link)), link)

    def test_uninstall_removes_what_install_put(self):
        self.make_run("install")
        # Something of somebody else's in the same tree must survive.
        other = os.path.join(self.dest, "usr/local/bin/other-tool")
        with open(other, "w") as f:
            f.write("#!/bin/sh\n")
        self.make_run("uninstall")
        left = regular_files(self.dest)
        self.assertEqual(left, {"usr/local/bin/other-tool"},
                         "make uninstall left or removed files")
        self.assertFalse(os.path.exists(os.path.join(
            self.dest, "usr/local/share/doc/pop3server")),
            "the documentation folder is still there")

    def test_prefix_opt(self):
        self.make_run("install", "PREFIX=/opt/x")
        self.check_tree(installed("/opt/x"))
        self.assertEqual(os.listdir(self.dest), ["opt"],
                         "PREFIX=/opt/x installed outside /opt/x")
        r = run([os.path.join(self.dest, "opt/x/sbin/pop3server"), "-v"])
        self.assertEqual(r.rc, 0, r)
        self.make_run("uninstall", "PREFIX=/opt/x")
        self.assertEqual(regular_files(self.dest), set())

    def test_prefix_with_sed_characters(self):
        # &, | and \ mean something in a sed replacement: the texts must
        # name the path as it is.
        prefix = "/opt/a&b|c\\d"
        self.make_run("install", "PREFIX=" + prefix)
        self.check_tree(installed(prefix))
        with open(os.path.join(self.dest, prefix[1:], "share/doc/pop3server",
                               "examples/pop3server.service")) as f:
            self.assertIn("ExecStart=%s/sbin/pop3server " % prefix, f.read())
        self.make_run("uninstall", "PREFIX=" + prefix)
        self.assertEqual(regular_files(self.dest), set())

    def test_mandir_and_docdir_on_their_own(self):
        self.make_run("install", "PREFIX=/usr", "MANDIR=/usr/man",
                      "DOCDIR=/usr/doc/p3")
        self.check_tree(installed("/usr", mandir="/usr/man",
                                  docdir="/usr/doc/p3"))
        self.make_run("uninstall", "PREFIX=/usr", "MANDIR=/usr/man",
                      "DOCDIR=/usr/doc/p3")
        self.assertEqual(regular_files(self.dest), set())

    def test_destdir_with_a_space(self):
        self.dest = os.path.join(self.dest, "dest dir")
        os.mkdir(self.dest)
        self.make_run("install")
        self.check_tree(installed("/usr/local"))
        self.make_run("uninstall")
        self.assertEqual(regular_files(self.dest), set())

    def test_uninstall_keeps_others_in_a_shared_docdir(self):
        # DOCDIR=/usr/share/doc is a folder every package shares: only
        # our own files may go.
        self.make_run("install", "PREFIX=/usr", "DOCDIR=/usr/share/doc")
        self.check_tree(installed("/usr", docdir="/usr/share/doc"))
        others = ("usr/share/doc/otherpkg/README", "usr/share/doc/notes.txt",
                  "usr/share/doc/examples/other.conf")
        for rel in others:
            p = os.path.join(self.dest, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write("not ours\n")
        self.make_run("uninstall", "PREFIX=/usr", "DOCDIR=/usr/share/doc")
        self.assertEqual(regular_files(self.dest), set(others))
