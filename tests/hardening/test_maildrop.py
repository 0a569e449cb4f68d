"""A maildrop the server cannot change, and an UPDATE cut short.

A read-only maildrop (a bind mount remounted read-only, which root
cannot bypass) still serves every message, those still in new/
included, with the UIDs they will keep once the maildrop is writable
again.  A client that hangs up right after QUIT still gets every
deletion it asked for, even when the deletions take several passes of
the reactor; a server told to stop while they run finishes them and
still answers the QUIT.
"""
import multiprocessing
import os
import random
import signal
import socket
import struct
import subprocess
import time

from hardlib import (ADMIN_PW, HardTest, Server, deliver, fixture_messages,
                     maildrop_files, mgmt, umount, unstuff, wait_until,
                     wire_form)

ALICE = fixture_messages("alice")


def uidl(c):
    return dict(ln.split(" ", 1) for ln in c.multi_lines("UIDL"))


def bind_read_only(testcase, folder):
    """Makes folder read-only for everyone, root included (a read-only
    bind mount over itself), until the test ends."""
    for args in (["--bind", folder, folder],
                 ["-o", "remount,bind,ro", folder]):
        p = subprocess.run(["mount"] + args, capture_output=True,
                           text=True, timeout=20)
        testcase.assertEqual(p.returncode, 0, p.stderr)
    testcase.addCleanup(umount, folder)


def retr(c, n):
    first, body = c.multi("RETR %d" % n)
    assert first.startswith("+OK"), first
    return unstuff(body)


class ReadOnlyMaildrop(HardTest):

    def setUp(self):
        self.srv = Server(users={"alice": "secret"}).__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.dir = self.srv.user_dir("alice")
        self.new_msg = b"Subject: arrived\n\nstill in new/\n"
        deliver(self.srv.maildir, "alice", "1800000001.M1P1.host",
                self.new_msg)
        # Twins: one unique name, two files (a copy restored next to
        # the original); the second must get a UID of its own.
        for flags, body in ((":2,S", b"first\n"), (":2,T", b"second\n")):
            with open(os.path.join(self.dir, "cur", "twin" + flags),
                      "wb") as f:
                f.write(b"Subject: twin\n\n" + body)
        self.mount_ro()

    def mount_ro(self):
        bind_read_only(self, self.dir)

    def test_new_mail_served_and_uids_kept_once_writable(self):
        c = self.srv.client()
        c.login()
        n = int(c.cmd("STAT").split()[1])
        ro_uids = uidl(c)
        self.assertEqual(len(set(ro_uids.values())), n, ro_uids)
        self.assertIn("1800000001.M1P1.host", ro_uids.values())
        num = [k for k, v in ro_uids.items()
               if v == "1800000001.M1P1.host"][0]
        self.assertEqual(retr(c, int(num)), wire_form(self.new_msg))
        self.assertTrue(c.cmd("DELE %s" % num).startswith("+OK"))
        r = c.quit()
        self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
        self.assertTrue(self.srv.wait_log(
            r"warning: pop3\[\d+\] user=alice \d+ messages could not be "
            r"moved from new/ to cur/ \(Read-only file system\)"),
            self.srv.log_text())
        # The failed deletion names its file and the system's reason.
        self.assertTrue(self.srv.wait_log(
            r"warning: pop3\[\d+\] user=alice 1 deletions failed \(the "
            r"first, 1800000001\.M1P1\.host: Read-only file system\)$"),
            self.srv.log_text())
        # The access log's dele= counts what was removed: nothing.
        self.assertTrue(self.srv.wait_log(
            r"user=alice logout .* dele=0/%d .*reason=quit" % n),
            self.srv.log_text())

        umount(self.dir)
        c = self.srv.client()
        c.login()
        rw_uids = uidl(c)
        c.quit()
        self.assertEqual(sorted(rw_uids.values()),
                         sorted(ro_uids.values()),
                         "UIDs changed when the maildrop became writable")
        self.assertEqual(os.listdir(os.path.join(self.dir, "new")), [])


class ReadOnlyWithoutTmp(HardTest):
    """A read-only maildrop without tmp/ (an archive restored by a tool
    that drops empty folders): tmp/ is for deliveries, so the mail is
    still served."""

    def test_served_without_tmp(self):
        with Server(users={"alice": "secret"}) as srv:
            d = srv.user_dir("alice")
            if os.path.isdir(os.path.join(d, "tmp")):
                os.rmdir(os.path.join(d, "tmp"))
            bind_read_only(self, d)
            c = srv.client()
            c.login()
            n = int(c.cmd("STAT").split()[1])
            self.assertGreater(n, 0)
            self.assertEqual(retr(c, 1), wire_form(ALICE[0][1]))
            self.assertTrue(c.quit().startswith("+OK"))
            self.assertFalse(os.path.exists(os.path.join(d, "tmp")))


class ReadOnlyAfterCutMove(ReadOnlyMaildrop):
    """A move to cur/ cut short by kill -9, then the maildrop read-only.

    new/x is hard-linked to cur/x.I<inode>:2, (cur/x:2,S, another
    message, held the plain name): one file under two names, of which
    the server can remove neither.  It is still one message.
    """

    def start_server(self):
        """A server; self.before: the files its fixtures put there."""
        self.srv = Server(users={"alice": "secret"}).__enter__()
        self.addCleanup(self.srv.__exit__, None, None, None)
        self.dir = self.srv.user_dir("alice")
        self.before = sum(len(os.listdir(os.path.join(self.dir, sub)))
                          for sub in ("cur", "new"))

    def setUp(self):
        self.start_server()
        name = "1800000002.M2P2.host"
        self.msgs = {b"Subject: older\n\nin cur/ first\n",
                     b"Subject: newer\n\ncut short\n"}
        with open(os.path.join(self.dir, "cur", name + ":2,S"), "wb") as f:
            f.write(b"Subject: older\n\nin cur/ first\n")
        new = deliver(self.srv.maildir, "alice", name,
                      b"Subject: newer\n\ncut short\n")
        os.link(new, os.path.join(self.dir, "cur", "%s.I%d:2," % (
            name, os.stat(new).st_ino)))
        self.mount_ro()

    def test_new_mail_served_and_uids_kept_once_writable(self):
        c = self.srv.client()
        c.login()
        ro_uids = uidl(c)
        n = self.before + 2
        self.assertEqual(len(ro_uids), n, ro_uids)
        self.assertEqual(len(set(ro_uids.values())), n, ro_uids)
        self.assertEqual({retr(c, i) for i in (n - 1, n)},
                         {wire_form(m) for m in self.msgs})
        c.quit()
        umount(self.dir)
        c = self.srv.client()
        c.login()
        rw_uids = uidl(c)
        c.quit()
        self.assertEqual(rw_uids, ro_uids,
                         "UIDs changed when the maildrop became writable")
        self.assertEqual(os.listdir(os.path.join(self.dir, "new")), [])


class ReadOnlyAfterCutMoveFlagged(ReadOnlyAfterCutMove):
    """A move cut short (new/x hard-linked to cur/x:2,), then another
    reader renamed the cur/ name to x:2,S, then the maildrop made
    read-only: still one message, x, beside the other one."""

    def setUp(self):
        self.start_server()
        self.msgs = {b"Subject: other\n\nanother message\n",
                     b"Subject: flagged\n\ncut short, then flagged\n"}
        deliver(self.srv.maildir, "alice", "1800000003.M3P3.host",
                b"Subject: other\n\nanother message\n", sub="cur")
        new = deliver(self.srv.maildir, "alice", "1800000004.M4P4.host",
                      b"Subject: flagged\n\ncut short, then flagged\n")
        os.link(new, os.path.join(self.dir, "cur",
                                  "1800000004.M4P4.host:2,S"))
        self.mount_ro()


class QuitThenHangUp(HardTest):

    COUNT = 3000

    def test_every_deletion_done_after_a_reset(self):
        with Server(users={"alice": "secret"}) as srv:
            d = srv.user_dir("alice")
            for i in range(self.COUNT):
                deliver(srv.maildir, "alice", "1800%06d.M%dP1.host" % (i, i),
                        b"Subject: %d\n\nbody\n" % i, sub="cur")
            c = srv.client(timeout=60)
            c.login()
            total = int(c.cmd("STAT").split()[1])
            self.assertGreaterEqual(total, self.COUNT)
            c.sock.sendall(b"".join(b"DELE %d\r\n" % i
                                    for i in range(1, total + 1)))
            for _ in range(total):
                self.assertTrue(c.line().startswith(b"+OK"))
            # QUIT, then a reset at once: no time to read the answer.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
            c.sock.sendall(b"QUIT\r\n")
            c.sock.close()
            self.assertTrue(srv.wait_log(r"user=alice logout", timeout=30),
                            srv.log_text())
            self.assertEqual(os.listdir(os.path.join(d, "cur")), [])
            self.assertEqual(os.listdir(os.path.join(d, "new")), [])
            self.assertRegex(srv.log_text(),
                             r"logout retr=0/0 top=0 dele=%d/%d " %
                             (total, total))


class BigQuit(HardTest):
    """A QUIT with 20,000 deletions (some 40 reactor passes), cut into
    by a SIGTERM or by the client going away."""

    COUNT = 20000

    def quit_started(self, srv, hang_up=False):
        """Logs in, marks every message, sends QUIT (then a reset when
        hang_up) and returns the client once the first unlink is seen."""
        cur = os.path.join(srv.user_dir("alice"), "cur")
        for i in range(self.COUNT):
            deliver(srv.maildir, "alice", "1800%06d.M%dP1.host" % (i, i),
                    b"Subject: %d\n\nbody\n" % i, sub="cur")
        c = srv.client(timeout=60)
        c.login()
        for first in range(1, self.COUNT + 1, 1000):
            c.sock.sendall(b"".join(b"DELE %d\r\n" % i
                                    for i in range(first, first + 1000)))
            for _ in range(1000):
                self.assertTrue(c.line().startswith(b"+OK"))
        before = os.stat(cur).st_mtime_ns
        if hang_up:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
        c.sock.sendall(b"QUIT\r\n")
        if hang_up:
            c.sock.close()
        # The first unlink changes cur/: what follows comes mid-commit.
        self.assertTrue(wait_until(
            lambda: os.stat(cur).st_mtime_ns != before, 30, 0))
        return c

    def assert_all_deleted(self, srv, reason):
        self.assertEqual(os.listdir(os.path.join(srv.user_dir("alice"),
                                                 "cur")), [])
        self.assertRegex(srv.log_text(),
                         r"logout retr=0/0 top=0 dele=%d/%d .* reason=%s" %
                         (self.COUNT, self.COUNT, reason))


class QuitThenShutdown(BigQuit):
    """SIGTERM while a QUIT's deletions run: they are finished (their
    owner asked for them) and the client still gets QUIT's answer, so
    the session is logged as a quit."""

    def test_deletions_finished_and_quit_answered(self):
        with Server(users={"alice": "secret"}, mail=None) as srv:
            c = self.quit_started(srv)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(c.line(),
                             b"+OK pop3server signing off (0 messages left)"
                             b"\r\n")
            self.assertEqual(srv.proc.wait(30), 0)
            self.assertIsNone(srv.sanitizer_report())
            self.assert_all_deleted(srv, "quit")


class QuitThenKicked(BigQuit):
    """A session ended during a long QUIT (here by DELETE_USER): its
    deletions go on, a slice a pass, and other clients are served
    meanwhile."""

    def test_others_served_while_the_deletions_go_on(self):
        with Server(users={"alice": "secret", "admin": ADMIN_PW},
                    mail=None) as srv:
            m = mgmt(srv)
            self.quit_started(srv)
            m.ok("DELETE_USER alice")
            other = srv.client()
            self.assertTrue(other.line().startswith(b"+OK"))
            self.assertNotIn("user=alice logout", srv.log_text())
            self.assertTrue(srv.wait_log(r"user=alice logout", timeout=60),
                            srv.log_text())
            self.assertTrue(other.cmd("CAPA").startswith("+OK"))
            # Its QUIT was carried out: a quit, not a disconnect.
            self.assertNotIn("user=alice closed by the server",
                             srv.log_text())
            self.assert_all_deleted(srv, "quit")


class QuitThenKickedThenPaused(BigQuit):
    """MGMT TIMEOUT pauses the deletions of a session that is gone too,
    like every POP3 session's work; they end after the pause."""

    def test_orphaned_deletions_wait_for_the_pause_end(self):
        with Server(users={"alice": "secret", "admin": ADMIN_PW},
                    mail=None) as srv:
            cur = os.path.join(srv.user_dir("alice"), "cur")
            m = mgmt(srv)
            self.quit_started(srv)
            m.ok("DELETE_USER alice")
            m.send(b"TIMEOUT 2\r\n")
            self.assertTrue(srv.wait_log(r"pop3 service paused"))
            left = len(os.listdir(cur))
            self.assertGreater(left, 0)
            time.sleep(0.5)
            self.assertEqual(len(os.listdir(cur)), left)
            self.assertEqual(m.text(), "+OK TIMEOUT COMPLETED")
            self.assertTrue(srv.wait_log(r"user=alice logout", timeout=60),
                            srv.log_text())
            self.assert_all_deleted(srv, "quit")


def other_reader(user_dir, seconds, seed, result):
    """Plays an IMAP server sharing the Maildir for `seconds`: delivers
    messages to new/ and moves them to cur/ itself, and keeps changing
    the flags of the files in cur/.  Writes how many it delivered to
    `result`.  Runs in a process of its own, for real concurrency."""
    rnd = random.Random(seed)
    cur = os.path.join(user_dir, "cur")
    new = os.path.join(user_dir, "new")
    flags = ("", "S", "RS", "FS", "T")
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        batch = []
        for _ in range(5):
            name = SharedMaildrop.name(count)
            deliver(os.path.dirname(user_dir), os.path.basename(user_dir),
                    name, SharedMaildrop.body(name))
            batch.append(name)
            count += 1
        for name in batch:
            try:
                os.rename(os.path.join(new, name),
                          os.path.join(cur, name + ":2,"))
            except FileNotFoundError:
                pass        # the POP3 server moved it first
        for _ in range(40):
            try:
                names = os.listdir(cur)
            except FileNotFoundError:
                continue
            if not names:
                break
            old = rnd.choice(names)
            base = old.split(":", 1)[0]
            try:
                os.rename(os.path.join(cur, old), os.path.join(
                    cur, "%s:2,%s" % (base, rnd.choice(flags))))
            except FileNotFoundError:
                pass        # renamed by us before, listed stale
    with open(result, "w") as f:
        f.write(str(count))


class SharedMaildrop(HardTest):
    """A Maildir shared with another reader (an IMAP server) that moves
    messages from new/ to cur/ and renames them for their flags while
    POP3 sessions list and fetch them: no message is ever lost or
    doubled, and what RETR serves is the message asked for."""

    SECONDS = 8
    START = 300

    @staticmethod
    def name(i):
        return "1900%06d.M%dP7.other" % (i, i)

    @staticmethod
    def body(name):
        return b"Subject: %s\n\nbody of %s\n" % (name.encode(),
                                                 name.encode())

    def test_nothing_lost_while_another_reader_renames(self):
        with Server(users={"alice": "secret"}, mail=None) as srv:
            d = srv.user_dir("alice")
            for i in range(self.START):
                n = "1800%06d.M%dP1.host" % (i, i)
                deliver(srv.maildir, "alice", n, self.body(n), sub="cur")
            result = os.path.join(srv.tmp, "delivered")
            other = multiprocessing.get_context("fork").Process(
                target=other_reader, args=(d, self.SECONDS, 7, result))
            other.start()
            self.addCleanup(other.kill)
            rnd = random.Random(1)
            sessions = served = 0
            while other.is_alive():
                c = srv.client(timeout=30)
                c.login()
                uids = uidl(c)
                for n in rnd.sample(sorted(uids), min(3, len(uids))):
                    first, body = c.multi("RETR %s" % n)
                    if first.startswith("+OK"):
                        self.assertEqual(unstuff(body), wire_form(
                            self.body(uids[n])), uids[n])
                        served += 1
                c.quit()
                sessions += 1
            other.join(10)
            self.assertEqual(other.exitcode, 0)
            with open(result) as f:
                delivered = int(f.read())
            files = maildrop_files(srv.maildir, "alice")
            want = ["1800%06d.M%dP1.host" % (i, i) for i in
                    range(self.START)] + [self.name(i) for i in
                                          range(delivered)]
            lost = [n for n in want if n not in files]
            doubled = [n for n, f in files.items() if len(f) != 1]
            self.assertEqual((lost, doubled), ([], []),
                             "after %d sessions" % sessions)
            for n in want:
                self.assertEqual(files[n][0][2], self.body(n), n)
            self.assertGreater(served, 0)
