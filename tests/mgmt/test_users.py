"""ADD_USER, DELETE_USER, RESET_USER_PASSWORD, CHANGE_PASSWORD: replies,
effect on POP3 logins, the users file written (hashed, mode 0600) before
the +OK, restarts, names that could escape the mail root, and
DELETE_USER of a user in a POP3 session."""
import os
import signal
import socket
import time
import unittest

from mgmtlib import (ADMIN_PW, SHA512_HASH, MgmtServer, Mgmt, crypt_matches,
                     SharedServerTest, pop3_login_result, tree,
                     users_file_accounts, users_file_mode, users_file_text)


class UserCommands(SharedServerTest):
    """On one shared server; each test uses its own user names."""

    SERVER = MgmtServer
    SERVER_KW = {}

    def setUp(self):
        self.m = self.srv.mgmt()

    def tearDown(self):
        self.m.close()

    def assert_stored(self, name, password):
        """The users file, read now, holds name with a SHA-512 crypt hash
        of password, never the password itself; mode 0600."""
        acc = users_file_accounts(self.srv)
        self.assertIn(name, acc)
        self.assertRegex(acc[name], SHA512_HASH)
        # never in clear: not in any line past its user name
        rest = [ln.split(":", 1)[-1]
                for ln in users_file_text(self.srv).splitlines()]
        if len(password) >= 8:
            self.assertFalse([r for r in rest if password in r])
        else:
            self.assertNotIn(password, acc[name])
        self.assertEqual(users_file_mode(self.srv), 0o600)
        ok = crypt_matches(password, acc[name])
        if ok is not None:
            self.assertTrue(ok, "stored hash of %s does not match" % name)

    # ADD_USER

    def test_add_user(self):
        first, body = self.m.run("ADD_USER dave Dave-Pw.991")
        self.assertEqual(first, "+OK ADD_USER")
        self.assertEqual(body, ["USER ADDED SUCCESSFULLY"])
        self.assert_stored("dave", "Dave-Pw.991")
        self.assertIn("dave", self.m.ok("USERS"))
        self.assertTrue(pop3_login_result(self.srv, "dave", "Dave-Pw.991")
                        .startswith("+OK"))

    def test_added_user_maildrop_works(self):
        self.m.ok("ADD_USER erin Erin-Pw.1")
        c = self.srv.client()
        try:
            c.login("erin", "Erin-Pw.1")
            self.assertEqual(c.cmd("STAT").strip(), "+OK 0 0")
        finally:
            c.close()

    def test_add_user_counts(self):
        n = self.m.status()["TOTAL USERS"]
        self.m.ok("ADD_USER frank Frank-Pw")
        self.assertEqual(self.m.status()["TOTAL USERS"], n + 1)
        body = self.m.ok("USERS")
        self.assertEqual(body[0], "USER COUNT: %d" % (n + 1))

    def test_add_existing_user(self):
        before = users_file_text(self.srv)
        for name in ("alice", "admin"):
            with self.subTest(name=name):
                self.assertEqual(self.m.run("ADD_USER %s other1" % name),
                                 ("-ERR USER ALREADY EXISTS", None))
        self.assertEqual(users_file_text(self.srv), before)
        # the old password still works
        self.assertTrue(pop3_login_result(self.srv, "alice", "secret")
                        .startswith("+OK"))

    def test_user_names_are_case_sensitive(self):
        first, _ = self.m.run("ADD_USER Alice Other-Pw")
        self.assertEqual(first, "+OK ADD_USER")
        users = self.m.ok("USERS")
        self.assertIn("Alice", users)
        self.assertIn("alice", users)

    def test_bad_user_names(self):
        root_parent = self.srv.tmp
        before_parent = tree(root_parent)
        before_file = users_file_text(self.srv)
        n = self.m.status()["TOTAL USERS"]
        for name in ("../x", ".hidden", "a/b", "x" * 65, "..", ".",
                     "a\\b", "a*b", "a:b", "/abs", "~root", "caf\xe9"):
            with self.subTest(name=name):
                self.m.send(("ADD_USER %s pw123456\r\n" % name)
                            .encode("latin-1"))
                self.assertEqual(self.m.text(), "-ERR INVALID USER NAME")
        self.assertEqual(tree(root_parent), before_parent)
        self.assertFalse(os.path.exists(os.path.join(root_parent, "x")))
        self.assertEqual(users_file_text(self.srv), before_file)
        self.assertEqual(self.m.status()["TOTAL USERS"], n)

    def test_good_user_names(self):
        for name in ("y" * 64, "a.b-c_D9", "Z", "9lives", "x.."):
            with self.subTest(name=name):
                first, _ = self.m.run("ADD_USER %s pw-%d" % (name, len(name)))
                self.assertEqual(first, "+OK ADD_USER")
                self.assertIn(name, self.m.ok("USERS"))

    def test_bad_password(self):
        before = users_file_text(self.srv)
        for pw in ("p" * 129, "tab\tpw", "bell\x07"):
            with self.subTest(pw=pw[:10]):
                r = self.m.ask("ADD_USER gina %s" % pw)
                self.assertTrue(r.startswith("-ERR"), r)
        self.assertNotIn("gina", self.m.ok("USERS"))
        self.assertEqual(users_file_text(self.srv), before)

    def test_longest_password(self):
        pw = "P" * 128
        self.assertEqual(self.m.run("ADD_USER hank %s" % pw)[0],
                         "+OK ADD_USER")
        self.assertTrue(pop3_login_result(self.srv, "hank", pw)
                        .startswith("+OK"))

    def test_passwords_are_salted(self):
        self.m.ok("ADD_USER ivan Same-Pw-42")
        self.m.ok("ADD_USER judy Same-Pw-42")
        acc = users_file_accounts(self.srv)
        self.assertNotEqual(acc["ivan"], acc["judy"])

    def test_password_not_in_log(self):
        self.m.ok("ADD_USER kim Kim-Secret-Pw-5521")
        self.m.ok("RESET_USER_PASSWORD kim")
        self.assertNotIn("Kim-Secret-Pw-5521", self.srv.log_text())

    # DELETE_USER

    def test_delete_user(self):
        self.m.ok("ADD_USER liam Liam-Pw")
        os.makedirs(os.path.join(self.srv.maildir, "liam", "cur"),
                    exist_ok=True)
        msg = os.path.join(self.srv.maildir, "liam", "cur", "1.x:2,")
        with open(msg, "wb") as f:
            f.write(b"Subject: keep\n\nkeep me\n")
        n = self.m.status()["TOTAL USERS"]
        first, body = self.m.run("DELETE_USER liam")
        self.assertEqual(first, "+OK DELETE_USER")
        self.assertEqual(body, ["USER DELETED SUCCESSFULLY"])
        # saved before the +OK
        self.assertNotIn("liam", users_file_accounts(self.srv))
        self.assertEqual(users_file_mode(self.srv), 0o600)
        self.assertNotIn("liam", self.m.ok("USERS"))
        self.assertEqual(self.m.status()["TOTAL USERS"], n - 1)
        # the mail stays
        self.assertTrue(os.path.isfile(msg))
        self.assertFalse(pop3_login_result(self.srv, "liam", "Liam-Pw")
                         .startswith("+OK"))

    def test_delete_admin(self):
        self.assertEqual(self.m.run("DELETE_USER admin"),
                         ("-ERR ADMIN CANNOT BE DELETED", None))
        self.assertIn("admin", self.m.ok("USERS"))

    def test_delete_unknown(self):
        before = users_file_text(self.srv)
        for name in ("ghost", "ALICE", "../alice", ".."):
            with self.subTest(name=name):
                self.assertEqual(self.m.run("DELETE_USER " + name),
                                 ("-ERR USER NOT FOUND", None))
        self.assertEqual(users_file_text(self.srv), before)
        self.assertTrue(os.path.isdir(os.path.join(self.srv.maildir,
                                                   "alice")))

    # RESET_USER_PASSWORD

    def test_reset_user_password(self):
        self.m.ok("ADD_USER mona Mona-Old-Pw")
        first, body = self.m.run("RESET_USER_PASSWORD mona")
        self.assertEqual(first, "+OK RESET_USER_PASSWORD")
        self.assertEqual(body, ["PASSWORD RESET SUCCESSFULLY"])
        self.assert_stored("mona", "mona")
        self.assertTrue(pop3_login_result(self.srv, "mona", "mona")
                        .startswith("+OK"))
        self.assertFalse(pop3_login_result(self.srv, "mona", "Mona-Old-Pw")
                         .startswith("+OK"))

    def test_reset_unknown(self):
        before = users_file_text(self.srv)
        self.assertEqual(self.m.run("RESET_USER_PASSWORD ghost"),
                         ("-ERR USER NOT FOUND", None))
        self.assertEqual(users_file_text(self.srv), before)


class ChangePassword(unittest.TestCase):
    def setUp(self):
        self.srv = MgmtServer().__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.m = self.srv.mgmt()

    def tearDown(self):
        self.m.close()

    def test_change_password(self):
        new = "New-Adm1n-Pw.42"
        first, body = self.m.run("CHANGE_PASSWORD %s %s" % (ADMIN_PW, new))
        self.assertEqual(first, "+OK CHANGE_PASSWORD")
        self.assertEqual(body, ["PASSWORD CHANGED SUCCESSFULLY"])
        # saved before the +OK, hashed
        acc = users_file_accounts(self.srv)
        self.assertRegex(acc["admin"], SHA512_HASH)
        self.assertNotIn(new, users_file_text(self.srv))
        self.assertEqual(users_file_mode(self.srv), 0o600)
        if crypt_matches(new, acc["admin"]) is not None:
            self.assertTrue(crypt_matches(new, acc["admin"]))
        self.assertNotIn(new, self.srv.log_text())
        # the session goes on
        self.assertTrue(self.m.alive())
        # MGMT: old refused, new accepted
        old = Mgmt(self.srv.mgmt_port)
        try:
            old.text()
            self.assertEqual(old.ask("USER admin"), "+OK USER")
            self.assertTrue(old.ask("PASS " + ADMIN_PW).startswith("-ERR"))
        finally:
            old.close()
        self.srv.mgmt(login=False).login(new)
        # POP3 (admin is also a POP3 user)
        self.assertFalse(pop3_login_result(self.srv, "admin", ADMIN_PW)
                         .startswith("+OK"))
        self.assertTrue(pop3_login_result(self.srv, "admin", new)
                        .startswith("+OK"))

    def test_wrong_old_password(self):
        before = users_file_text(self.srv)
        t0 = time.monotonic()
        self.assertEqual(self.m.run("CHANGE_PASSWORD wrong-old new-pw-1"),
                         ("-ERR WRONG PASSWORD", None))
        # Answered after the failed-login delay, like a wrong PASS.
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertTrue(self.m.run("NOOP")[0].startswith("+OK"))
        self.assertEqual(users_file_text(self.srv), before)
        self.assertIn("administrator password not changed: wrong old "
                      "password", self.srv.log_text())
        self.assertNotIn("wrong-old", self.srv.log_text())
        self.srv.mgmt(login=False).login(ADMIN_PW)

    def test_invalid_new_password(self):
        before = users_file_text(self.srv)
        for new in ("p" * 129, "tab\there", "\x7fdel"):
            with self.subTest(new=new[:8]):
                self.assertEqual(
                    self.m.run("CHANGE_PASSWORD %s %s" % (ADMIN_PW, new)),
                    ("-ERR INVALID PASSWORD", None))
        self.assertEqual(users_file_text(self.srv), before)
        self.srv.mgmt(login=False).login(ADMIN_PW)

    def test_changes_only_admin(self):
        self.m.ok("CHANGE_PASSWORD %s Other-Pw-1" % ADMIN_PW)
        self.assertTrue(pop3_login_result(self.srv, "alice", "secret")
                        .startswith("+OK"))


class DeleteDuringSession(unittest.TestCase):
    def test_delete_user_ends_pop3_session_without_update(self):
        with MgmtServer() as srv:
            c = srv.client(timeout=5)
            c.login("bob", "hunter2")
            files = sorted(os.listdir(os.path.join(srv.maildir, "bob",
                                                   "cur")))
            self.assertEqual(len(files), 2)
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
            self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
            m = srv.mgmt()
            first, body = m.run("DELETE_USER bob")
            self.assertEqual(first, "+OK DELETE_USER")
            self.assertTrue(c.closed(3), "bob's POP3 session still open")
            # logged with the spec's reason, and why
            self.assertTrue(srv.wait_log(r"user=bob closed by the server: "
                                         r"user deleted by the administrator"))
            self.assertTrue(srv.wait_log(r"user=bob logout .*"
                                         r"reason=disconnect$"))
            # no UPDATE: the messages marked deleted are still there
            self.assertEqual(sorted(os.listdir(os.path.join(
                srv.maildir, "bob", "cur"))), files)
            self.assertNotIn("bob", m.ok("USERS"))
            self.assertEqual(m.status()["TOTAL USERS"], 2)
            # the server goes on: another user's session works
            a = srv.client(timeout=5)
            a.login("alice", "secret")
            self.assertTrue(a.cmd("STAT").startswith("+OK"))
            a.close()
            m.close()
            c.close()

    def test_delete_user_while_in_authorization(self):
        """A session that has sent USER bob but not PASS cannot log in
        once bob is deleted."""
        with MgmtServer() as srv:
            c = srv.client(timeout=5)
            c.greeting()
            self.assertTrue(c.cmd("USER bob").startswith("+OK"))
            m = srv.mgmt()
            m.ok("DELETE_USER bob")
            r = c.cmd("PASS hunter2")
            self.assertTrue(r.startswith("-ERR"), r)
            m.close()
            c.close()


class ListingDuringChanges(unittest.TestCase):
    N = 100000      # 6.5 MB of names: more than the buffers hold

    def name(self, i):
        return ("u%06d" % i).ljust(64, "x")

    def start_listing(self, srv, numbers):
        """Restarts srv with users name(i) for i in numbers, then sends
        USERS on a session with a tiny receive window that reads nothing
        yet, so the listing stalls; returns (socket, its reader)."""
        srv.stop()
        h = users_file_accounts(srv)["admin"]
        with open(srv.users_file, "a") as f:
            f.write("max_users=%d\n" % (self.N + 10))
            for i in numbers:
                f.write("%s:%s\n" % (self.name(i), h))
        srv.start()
        a = socket.socket()
        self.addCleanup(a.close)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        a.settimeout(30)
        a.connect(("127.0.0.1", srv.mgmt_port))
        f = a.makefile("rb")
        f.readline()
        a.sendall(b"USER admin\r\nPASS %s\r\nUSERS\r\n"
                  % ADMIN_PW.encode())
        head = [f.readline() for _ in range(5)]
        self.assertEqual(head[2], b"+OK USERS\r\n", head)
        return a, f

    def rest(self, f):
        listed = []
        for ln in iter(f.readline, b".\r\n"):
            self.assertTrue(ln, "the listing was cut")
            listed.append(ln.decode().strip())
        self.assertEqual(listed, sorted(set(listed)), "repeated names")
        return listed

    def test_users_never_skips_a_name_deleted_before_it(self):
        """USERS streams a long list over many passes.  Another session
        deleting names the listing already sent must not make it skip
        names that still exist (it went on at an index, which moved)."""
        with MgmtServer() as srv:
            _, f = self.start_listing(srv, range(self.N))
            first = [f.readline().decode().strip() for _ in range(4)]
            self.assertEqual(first, ["admin", "alice", "bob", self.name(0)])
            b = srv.mgmt()
            for i in range(1, 11):
                b.ok("DELETE_USER " + self.name(i))
            b.close()
            listed = self.rest(f)
            want = [self.name(i) for i in range(11, self.N)]
            self.assertEqual(listed[-len(want):], want)

    def test_users_lists_a_name_added_after_its_place_once(self):
        """Names added during the listing before its place do not make
        it repeat names; one added beyond it is listed once, in order."""
        with MgmtServer() as srv:
            _, f = self.start_listing(srv, range(0, self.N, 2))
            f.readline()
            b = srv.mgmt()
            for i in (1, 3, 5):      # before the listing's place
                b.ok("ADD_USER %s pw-%d" % (self.name(i), i))
            late = self.name(self.N - 1)
            b.ok("ADD_USER %s pw-late" % late)
            b.close()
            listed = self.rest(f)
            self.assertEqual(listed[-1], late)
            self.assertIn(self.name(self.N - 2), listed)


class AuditLog(unittest.TestCase):
    def test_every_change_is_logged_without_a_password(self):
        # The log is the administrator's audit trail (operations.md).
        with MgmtServer() as srv:
            bad = srv.mgmt(login=False)
            bad.text()
            self.assertEqual(bad.ask("USER admin"), "+OK USER")
            self.assertTrue(bad.ask("PASS Wrong-Pw-77").startswith("-ERR"))
            bad.close()
            m = srv.mgmt()
            port = m.sock.getsockname()[1]
            for command in ("ADD_USER ivy Ivy-Audit-Pw1", "DELETE_USER ivy",
                            "RESET_USER_PASSWORD alice", "MAX_USERS 50",
                            "MAX_CONNEC 9", "IDLE_TIMEOUT 30",
                            "FILTER cat"):
                m.ok(command)
            self.assertEqual(m.ask("QUIT"), "+OK GOODBYE")
            m.close()
            peer = r"mgmt\[\d+\] 127\.0\.0\.1:"
            for rx in (peer + r"\d+ login-failed$",
                       peer + r"%d user=admin login$" % port,
                       r"mgmt\[\d+\] added user ivy$",
                       r"mgmt\[\d+\] deleted user ivy$",
                       r"mgmt\[\d+\] reset the password of alice$",
                       r"mgmt\[\d+\] max users now 50$",
                       r"mgmt\[\d+\] max connections now 9$",
                       r"mgmt\[\d+\] idle timeout now 30s$",
                       r"mgmt\[\d+\] RETR filter now: cat$",
                       peer + r"%d closed \(quit\)$" % port):
                with self.subTest(line=rx):
                    self.assertTrue(srv.wait_log(rx), srv.log_text())
            text = srv.log_text()
            for secret in ("Ivy-Audit-Pw1", "Wrong-Pw-77", ADMIN_PW):
                self.assertNotIn(secret, text)


class UsersPersist(unittest.TestCase):
    def test_added_user_survives_restart(self):
        with MgmtServer() as srv:
            m = srv.mgmt()
            m.ok("ADD_USER nina Nina-Pw-7")
            m.close()
            self.assertTrue(pop3_login_result(srv, "nina", "Nina-Pw-7")
                            .startswith("+OK"))
            srv.restart()
            self.assertTrue(pop3_login_result(srv, "nina", "Nina-Pw-7")
                            .startswith("+OK"))
            m = srv.mgmt()
            self.assertIn("nina", m.ok("USERS"))
            m.close()

    def test_changes_survive_sigkill(self):
        with MgmtServer() as srv:
            m = srv.mgmt()
            m.ok("ADD_USER oscar Oscar-Pw")
            m.ok("DELETE_USER bob")
            m.ok("RESET_USER_PASSWORD alice")
            m.close()
            # -u would set them again at start: leave them out
            del srv.users["bob"]
            del srv.users["alice"]
            srv.restart(sig=signal.SIGKILL)
            m = srv.mgmt()
            users = m.ok("USERS")
            m.close()
            self.assertIn("oscar", users)
            self.assertNotIn("bob", users)
            self.assertTrue(pop3_login_result(srv, "oscar", "Oscar-Pw")
                            .startswith("+OK"))
            self.assertTrue(pop3_login_result(srv, "alice", "alice")
                            .startswith("+OK"))

    def test_changed_admin_password_survives_restart(self):
        with MgmtServer() as srv:
            m = srv.mgmt()
            m.ok("CHANGE_PASSWORD %s Kept-Pw-9" % ADMIN_PW)
            m.close()
            del srv.users["admin"]
            srv.restart()
            srv.mgmt(login=False).login("Kept-Pw-9")


if __name__ == "__main__":
    unittest.main()
