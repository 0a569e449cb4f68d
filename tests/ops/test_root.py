"""Running as root (docs/operations.md 2.5, pop3server(8) --allow-root):
started as root without -g the server serves but logs a warning that
points at -g; --allow-root silences it; -g needs no --allow-root; a
root start that rewrites the service user's users file leaves it that
user's."""
import os
import stat
import unittest

from opslib import DroppedServer, Server, account, need_root

WARNING = r"warning: serving mail as root; .*-g USER"


def serves(testcase, s):
    c = s.client()
    try:
        c.login("alice", "secret")
        testcase.assertTrue(c.quit().startswith("+OK"))
    finally:
        c.close()


class Root(unittest.TestCase):

    def setUp(self):
        need_root(self)

    def test_root_without_g_warns(self):
        with Server() as s:
            self.assertTrue(s.wait_log(WARNING, timeout=2), s.log_text())
            self.assertEqual(s.log_text().count("serving mail as root"), 1)
            serves(self, s)

    def test_allow_root_silences_warning(self):
        with Server(args=["--allow-root"]) as s:
            serves(self, s)
            self.assertTrue(s.wait_log(r" ready: "), s.log_text())
            self.assertNotIn("serving mail as root", s.log_text())
            self.assertNotIn("warning:", s.log_text())

    def test_root_rewrite_keeps_the_users_file_owner(self):
        # A root start with -u (to set a password) rewrites the file; the
        # service user must still own it, or its next start cannot read it.
        uid, gid = account()
        with Server(args=["--allow-root"]) as s:
            s.stop()
            os.chown(s.users_file, uid, gid)
            before = os.stat(s.users_file).st_ino
            s.start()
            st = os.stat(s.users_file)
            self.assertNotEqual(st.st_ino, before, "the file was not "
                                "rewritten: nothing proves its owner kept")
            self.assertEqual((st.st_uid, st.st_gid), (uid, gid))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            serves(self, s)

    def test_g_needs_no_allow_root(self):
        with DroppedServer() as s:
            serves(self, s)
            self.assertNotIn("serving mail as root", s.log_text())
