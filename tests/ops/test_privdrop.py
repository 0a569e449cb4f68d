"""-g USER (docs/operations.md 2.5, pop3server(8)): started as root, the
server binds, then becomes USER for good before it touches the users
file or any maildrop; every file it writes afterwards belongs to USER.
An unknown user is a bad option value (exit status 2, before binding);
-g without root is exit status 1.  The tests use
the existing unprivileged account "nobody" (group nogroup) and a mail
root and users-file folder chowned to it, as operations.md 2.3 says."""
import os
import re
import shutil
import signal
import socket
import stat
import unittest

from opslib import (ADMIN_PW, RUN_AS, SERVER_BIN, USERS, DroppedServer,
                    account, chown_tree,
                    free_port, monitor, need_root, proc_status, read_text,
                    retr, run, tmpdir, uidl_map, wait_for, wire_form)


def start_once(d, *args, server=SERVER_BIN, **kw):
    """Runs a server that is meant to stop at start: mail root d/mail,
    users file d/users (unless args give -U), free loopback ports."""
    cmd = [server, "-p", str(free_port()), "-l", "127.0.0.1",
           "-P", str(free_port()), "-L", "127.0.0.1",
           "-d", os.path.join(d, "mail")]
    if "-U" not in args:
        cmd += ["-U", os.path.join(d, "users")]
    return run(cmd + list(args), timeout=10, **kw)


class Dropped(unittest.TestCase):

    def setUp(self):
        need_root(self)
        self.uid, self.gid = account(RUN_AS)
        self.assertNotEqual(self.uid, 0)
        self.s = DroppedServer(users=dict(USERS, bob="hunter2")).__enter__()
        self.addCleanup(self.s.__exit__, None, None, None)

    def test_proc_status_ids(self):
        st = proc_status(self.s.pid)
        self.assertEqual(st["Uid"], [self.uid] * 4, "Uid: real/eff/saved/fs")
        self.assertEqual(st["Gid"], [self.gid] * 4, "Gid: real/eff/saved/fs")
        self.assertEqual(sorted(st["Groups"]), self.s.expected_groups(),
                         "supplementary groups (started with %r)"
                         % DroppedServer.START_GROUPS)
        self.assertTrue(self.s.wait_log(r"info: running as %s \(uid %d, gid %d\)"
                                        % (RUN_AS, self.uid, self.gid)),
                        self.s.log_text())
        self.assertNotIn("serving mail as root", self.s.log_text())

    def test_retr_dele_quit_as_user(self):
        c = self.s.client()
        try:
            c.login("alice", "secret")
            uids = uidl_map(c)
            cur = os.path.join(self.s.maildir, "alice", "cur")
            by_uid = {n.split(":")[0]: n for n in os.listdir(cur)}
            name = by_uid[uids[1]]
            path = os.path.join(cur, name)
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(retr(c, 1), wire_form(data))
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
            self.assertTrue(c.quit().startswith("+OK"))
        finally:
            c.close()
        self.assertFalse(os.path.exists(path), "DELE + QUIT left %s" % name)
        self.assertEqual(len(os.listdir(cur)), len(uids) - 1)

    def test_created_folders_belong_to_user(self):
        # bob's fixture maildrop has only cur/: the server creates new/ and
        # tmp/ at login, as the -g user.
        c = self.s.client()
        try:
            c.line()
            self.assertTrue(c.cmd("USER bob").startswith("+OK"))
            self.assertTrue(c.cmd("PASS hunter2").startswith("+OK"),
                            self.s.log_text())
            c.quit()
        finally:
            c.close()
        for sub in ("new", "tmp"):
            st = os.stat(os.path.join(self.s.maildir, "bob", sub))
            self.assertEqual((st.st_uid, st.st_gid), (self.uid, self.gid), sub)

    def test_users_file_rewritten_as_user(self):
        def owner_mode():
            st = os.stat(self.s.users_file)
            return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_ino

        uid, gid, mode, ino = owner_mode()
        self.assertEqual((uid, gid, mode), (self.uid, self.gid, 0o600),
                         "users file written at start")
        r = monitor(self.s.mgmt_port, "-ADD_USER", "carol", "c4rol-pw")
        self.assertEqual(r.rc, 0, r)
        uid, gid, mode, ino2 = owner_mode()
        self.assertNotEqual(ino2, ino, "ADD_USER did not rewrite the file")
        self.assertEqual((uid, gid, mode), (self.uid, self.gid, 0o600),
                         "users file after ADD_USER")
        self.assertRegex(read_text(self.s.users_file), r"(?m)^carol:\$6\$")
        self.assertEqual([n for n in os.listdir(self.s.tmp) if ".tmp." in n], [],
                         "temporary users file left behind")
        # Persisted: after a restart (as root, -g again) carol logs in.
        self.s.stop()
        self.s.start()
        c = self.s.client()
        try:
            c.login("carol", "c4rol-pw")
            c.quit()
        finally:
            c.close()

    def test_root_only_maildrop_unreadable_after_drop(self):
        # The drop is real: a maildrop only root can enter is refused
        # (the server really runs without root's rights).
        alice = os.path.join(self.s.maildir, "alice")
        for d, dirs, files in os.walk(alice):
            for n in dirs + files:
                os.lchown(os.path.join(d, n), 0, 0)
        os.chown(alice, 0, 0)
        os.chmod(alice, 0o700)
        c = self.s.client()
        try:
            c.line()
            c.cmd("USER alice")
            r = c.cmd("PASS secret")
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
        finally:
            c.close()
        # The warning names the folder to fix, and why.
        self.assertTrue(self.s.wait_log(
            r"warning: pop3\[\d+\] user=alice maildrop %s: cannot be read "
            r"\(Permission denied\)" % re.escape(alice)), self.s.log_text())

    def test_unreadable_message_left_out_not_the_maildrop(self):
        # One message file the server cannot read costs that message,
        # not the user's whole maildrop; the admin is told.
        d = os.path.join(self.s.maildir, "alice")
        total = sum(len(os.listdir(os.path.join(d, sub)))
                    for sub in ("cur", "new"))
        victim = os.path.join(d, "cur", "1800000000.M1P1.rootonly:2,")
        with open(victim, "wb") as f:
            f.write(b"Subject: root only\n\nunreadable\n")
        os.chmod(victim, 0o600)
        c = self.s.client()
        try:
            c.login("alice", "secret")
            r = c.cmd("STAT")
            self.assertTrue(r.startswith("+OK %d " % total), r)
            c.quit()
        finally:
            c.close()
        self.assertTrue(os.path.exists(victim))
        self.assertTrue(self.s.wait_log(
            r"warning: pop3\[\d+\] user=alice 1 message files could not "
            r"be read \(Permission denied\): left out of the list"),
            self.s.log_text())

    def test_new_folder_not_writable_message_never_comes_back(self):
        # new/ belongs to root: a message there can be linked into cur/
        # but not unlinked from new/.  Under both names it would come
        # back after its DELE; it is served from new/ instead, and a
        # QUIT that cannot delete it says so.
        d = os.path.join(self.s.maildir, "alice")
        new = os.path.join(d, "new")
        name = "1800000000.M1P1.stuck"
        with open(os.path.join(new, name), "wb") as f:
            f.write(b"Subject: stuck\n\nin new/\n")
        os.chown(os.path.join(new, name), self.uid, self.gid)
        os.chown(new, 0, 0)
        os.chmod(new, 0o755)
        c = self.s.client()
        try:
            c.login("alice", "secret")
            uids = uidl_map(c)
            num = [n for n, u in uids.items() if u == name]
            self.assertEqual(len(num), 1, uids)
            self.assertTrue(c.cmd("DELE %d" % num[0]).startswith("+OK"))
            r = c.quit()
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
        finally:
            c.close()
        self.assertFalse([n for n in os.listdir(os.path.join(d, "cur"))
                          if n.startswith(name)])
        c = self.s.client()
        try:
            c.login("alice", "secret")
            self.assertEqual(uidl_map(c), uids)
            c.quit()
        finally:
            c.close()


class UsersFolderNotReadable(unittest.TestCase):
    """The users file's folder at mode 0300 (the -g user may create and
    rename files in it but not open it, so not sync it): a save fails
    before the old file is replaced, never after, so a change answered
    -ERR is nowhere, neither in memory nor on disk."""

    def setUp(self):
        need_root(self)
        self.uid, self.gid = account(RUN_AS)

    def test_refused_change_is_not_on_disk(self):
        s = DroppedServer(users=USERS).__enter__()
        self.addCleanup(s.__exit__, None, None, None)
        before = read_text(s.users_file)
        os.chmod(s.tmp, 0o300)
        self.addCleanup(os.chmod, s.tmp, 0o700)
        for change in (["-ADD_USER", "carol", "c4rol-pw"],
                       ["-CHANGE_PASSWORD", ADMIN_PW, "New-adm1n-pw"]):
            r = monitor(s.mgmt_port, *change)
            self.assertEqual(r.rc, 1, r)
            self.assertIn("-ERR [SYS/TEMP] CANNOT SAVE THE USERS FILE",
                          r.stdout)
            self.assertEqual(read_text(s.users_file), before,
                             "%s answered -ERR but is on disk" % change[0])
        self.assertEqual([n for n in os.listdir(s.tmp) if ".tmp." in n], [],
                         "temporary users file left behind")
        self.assertTrue(s.wait_log(r"cannot save the users file: "
                                   r"Permission denied"), s.log_text())
        r = monitor(s.mgmt_port, "-USERS")
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("carol", r.stdout)

    def test_start_creates_no_file(self):
        d = tmpdir(self)
        os.mkdir(os.path.join(d, "mail"))
        folder = os.path.join(d, "users.d")
        os.mkdir(folder, 0o300)
        os.chown(folder, self.uid, self.gid)
        os.chmod(d, 0o711)
        users = os.path.join(folder, "users")
        r = start_once(d, "-U", users, "-u", "admin:" + ADMIN_PW,
                       "-g", RUN_AS)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("cannot write %s: Permission denied" % users, r.stderr)
        self.assertFalse(os.path.exists(users),
                         "'cannot write' was printed, yet the file exists")
        self.assertEqual(os.listdir(folder), [])

class LogAsUser(unittest.TestCase):

    def test_sighup_reopens_log_as_user(self):
        # operations.md 2.5: the log is opened after the drop, as the -g
        # user, in a folder it owns, and so reopened after a rotation.
        need_root(self)
        uid, gid = account(RUN_AS)
        logdir = tmpdir(self, "ops-logdir-")
        os.chown(logdir, uid, gid)
        log = os.path.join(logdir, "pop3server.log")
        s = DroppedServer(users=USERS, args=["--log", log]).__enter__()
        self.addCleanup(s.__exit__, None, None, None)
        st = os.stat(log)
        self.assertEqual((st.st_uid, st.st_gid), (uid, gid),
                         "the first open is as the -g user too")
        os.rename(log, log + ".1")
        os.kill(s.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: os.path.exists(log)),
                        "SIGHUP created no new log")
        st = os.stat(log)
        self.assertEqual((st.st_uid, st.st_gid), (uid, gid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        c = s.client()
        c.login("alice", "secret")
        c.quit()
        self.assertTrue(wait_for(lambda: "user=alice logout" in read_text(log)),
                        read_text(log))


    def test_link_in_the_log_folder_gives_no_root_write(self):
        # The -g user owns the log folder: a link it plants there must
        # not make root append to, or create, a file only root may write.
        need_root(self)
        uid, gid = account(RUN_AS)
        d = tmpdir(self)
        os.chmod(d, 0o755)
        os.mkdir(os.path.join(d, "mail"))
        chown_tree(d, uid, gid)
        secret = tmpdir(self, "ops-rootonly-")
        os.chmod(secret, 0o700)
        victim = os.path.join(secret, "victim")
        with open(victim, "w") as f:
            f.write("root only\n")
        for target in (victim, os.path.join(secret, "new-file")):
            with self.subTest(target=os.path.basename(target)):
                log = os.path.join(d, "pop3server.log")
                if os.path.lexists(log):
                    os.unlink(log)
                os.symlink(target, log)
                os.lchown(log, uid, gid)
                r = start_once(d, "-g", RUN_AS, "--log", log)
                self.assertEqual(r.rc, 2, r)
                self.assertIn("cannot open log", r.stderr)
                self.assertEqual(read_text(victim), "root only\n")
                self.assertEqual(sorted(os.listdir(secret)), ["victim"])


class Refused(unittest.TestCase):

    def test_unknown_user_exits_2(self):
        need_root(self)
        d = tmpdir(self)
        os.mkdir(os.path.join(d, "mail"))
        r = start_once(d, "-g", "no-such-user-x9")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("no-such-user-x9", r.stderr)
        self.assertIn("no such user", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "users")),
                         "users file written although the drop failed")

    def folder(self, mail_mode):
        """A folder RUN_AS may enter, holding the mail root d/mail."""
        need_root(self)
        d = tmpdir(self)
        os.chmod(d, 0o755)
        mail = os.path.join(d, "mail")
        os.mkdir(mail, mail_mode)
        return d, mail

    def test_mail_root_user_cannot_enter_exits_2(self):
        # Found at start, not as a [SYS/TEMP] at every login.
        d, mail = self.folder(0o700)
        r = start_once(d, "-g", RUN_AS)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("mail root '%s': Permission denied as %s"
                      % (mail, RUN_AS), r.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "users")))

    def unprivileged(self, d):
        """A copy of the server that RUN_AS can run (the checkout may sit
        in a folder only root can enter: mktemp -d is 0700), and the
        preexec_fn that becomes RUN_AS."""
        uid, gid = account(RUN_AS)
        server = os.path.join(d, "pop3server")
        shutil.copy(SERVER_BIN, server)
        os.chmod(server, 0o755)

        def become():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        return server, become

    def test_not_root_exits_1(self):
        d, _ = self.folder(0o755)
        server, become = self.unprivileged(d)
        r = start_once(d, "-g", RUN_AS, server=server, preexec_fn=become)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("-g %s" % RUN_AS, r.stderr)

    def test_mail_root_not_enterable_exits_2_before_binding(self):
        # Without -g the serving rights are known at once: the check
        # comes before the ports, which the test holds (a bind would
        # end in 1, port in use).
        d, mail = self.folder(0o700)
        server, become = self.unprivileged(d)
        held = []
        for _ in range(2):
            sk = socket.socket()
            sk.bind(("127.0.0.1", 0))
            sk.listen(1)
            self.addCleanup(sk.close)
            held.append(str(sk.getsockname()[1]))
        r = start_once(d, "-p", held[0], "-P", held[1], server=server,
                       preexec_fn=become)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("mail root '%s': Permission denied" % mail, r.stderr)
