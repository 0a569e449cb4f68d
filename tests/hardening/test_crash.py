"""Crash safety: kill -9 at random moments of a mixed workload, many
times; a users file that cannot be written (full file system, no inode
left, read-only file system, no descriptor left) on every kind of MGMT
change; message files changed under a running session (truncated or
removed while they stream, replaced by a directory, a symlink or a
FIFO, removed after DELE); a new/ -> cur/ move cut short by a crash."""
import os
import random
import re
import shutil
import socket
import threading
import time

from hardlib import (ADMIN_PW, CANNOT_SAVE, Client, HardTest,
                     Server, TmpfsUsersServer, big_message, deliver,
                     fd_count, fixture_messages, maildrop_files, mgmt,
                     nofile_limit, parse_users_file, pop3_pass_reply,
                     read_until_close, remount, stuff, unstuff, wait_until,
                     wire_form)

BASE_USERS = {"admin": ADMIN_PW, "alice": "secret", "bob": "hunter2",
              "carol": "carol-pw", "dave": "dave-pw"}
ALICE = fixture_messages("alice")
ALICE_WIRES = [wire_form(m[1]) for m in ALICE]


class Workload:
    """What one iteration of the kill -9 loop did, as the clients saw it.

    POP3 workers (one per mail user) log in, check every RETR against the
    originals, DELE a random subset and QUIT, over and over.  The MGMT
    worker adds users and deletes earlier ones.  Each records what was
    *sent* (may have happened) and what was *acknowledged* (must have
    happened)."""

    def __init__(self, srv, originals, rng, added_before):
        self.srv = srv
        self.originals = originals          # user -> {base: bytes}
        self.rng = rng
        self.stop = threading.Event()
        self.maybe_deleted = set()          # (user, base): QUIT sent
        self.deleted = set()                # (user, base): QUIT +OK
        self.add_sent = {}                  # name -> password
        self.add_acked = {}
        self.del_sent = set()
        self.del_acked = set()
        self.added_before = list(added_before)
        self.problems = []
        self.ops = 0
        self.lock = threading.Lock()

    def pop3(self, user):
        rng = random.Random(self.rng.random())
        while not self.stop.is_set():
            try:
                c = Client(self.srv.port, timeout=5)
            except OSError:
                return
            try:
                c.greeting()
                c.cmd("USER " + user)
                r = c.cmd("PASS " + BASE_USERS[user])
                if r.startswith("-ERR [IN-USE]"):
                    time.sleep(0.005)
                    continue
                if not r.startswith("+OK"):
                    self.problems.append("%s login: %r" % (user, r))
                    return
                uids = {}
                for ln in c.multi_lines("UIDL"):
                    n, uid = ln.split(" ")
                    uids[int(n)] = uid
                dele = []
                unknown = [u for u in uids.values()
                           if u not in self.originals[user]]
                if unknown:
                    self.problems.append("%s: served unknown messages %r"
                                         % (user, unknown))
                    return
                nums = sorted(uids)
                for n in rng.sample(nums, min(3, len(nums))):
                    first, body = c.multi("RETR %d" % n)
                    if not first.startswith("+OK") or unstuff(body) != \
                            wire_form(self.originals[user][uids[n]]):
                        self.problems.append("%s: RETR %s not exact (%r)"
                                             % (user, uids[n], first))
                for n in nums:
                    if rng.random() < 0.03:
                        if c.cmd("DELE %d" % n).startswith("+OK"):
                            dele.append(uids[n])
                with self.lock:
                    for uid in dele:
                        self.maybe_deleted.add((user, uid))
                r = c.cmd("QUIT")
                if r.startswith("+OK"):
                    with self.lock:
                        for uid in dele:
                            self.deleted.add((user, uid))
                        self.ops += 1
                c.close()
                time.sleep(rng.uniform(0, 0.02))    # the next session
            except (OSError, EOFError, ValueError):
                return
            except AssertionError as e:
                self.problems.append("%s: %s" % (user, e))
                return
            finally:
                c.close()

    def admin(self, iteration):
        try:
            m = mgmt(self.srv, timeout=5)
        except (OSError, EOFError, AssertionError):
            return
        rng = random.Random(self.rng.random())
        k = 0
        try:
            while not self.stop.is_set():
                if self.added_before and rng.random() < 0.3:
                    name = self.added_before.pop(
                        rng.randrange(len(self.added_before)))
                    self.del_sent.add(name)
                    first = m.ask("DELETE_USER " + name)
                    if first.startswith("+OK"):
                        self.del_acked.add(name)
                        self.ops += 1
                        m.body()
                    continue
                name = "k%02d-%03d" % (iteration, k)
                pw = "pw-%d-%d" % (iteration, k)
                k += 1
                self.add_sent[name] = pw
                first = m.ask("ADD_USER %s %s" % (name, pw))
                if first.startswith("+OK"):
                    self.add_acked[name] = pw
                    self.ops += 1
                    m.body()
                elif first != "-ERR MAX USERS REACHED":
                    self.problems.append("ADD_USER %s: %r" % (name, first))
        except (OSError, EOFError, ValueError):
            return
        finally:
            m.close()


class KillNine(HardTest):
    LIMIT = 200
    ITERATIONS = 25

    def test_kill_9_at_random_moments(self):
        seed = int(os.environ.get("HARDENING_SEED", time.time()))
        rng = random.Random(seed)
        ctx = "seed %d (rerun with HARDENING_SEED=%d)" % (seed, seed)
        with Server(users=BASE_USERS, idle=30) as srv:
            srv.stop()
            originals = {u: {} for u in BASE_USERS if u != "admin"}
            for u, msgs in (("alice", ALICE),
                            ("bob", fixture_messages("bob"))):
                for uid, data, _ in msgs:
                    originals[u][uid] = data
            sent_pw = {}            # every name ADD_USER was sent for
            acked_adds = set()      # ever acknowledged
            del_sent = set()        # DELETE_USER ever sent
            del_acked = set()       # ever acknowledged
            accounts = parse_users_file(srv.users_file)
            total_ops = 0
            killed_busy = 0
            for it in range(self.ITERATIONS):
                # an MDA delivers while the server is down
                for u in originals:
                    for j in range(3):
                        uid = "%d.M%dP%d.hard" % (1800000000 + it * 10 + j,
                                                   it, j)
                        size = rng.choice((200, 3000, 40000, 150000))
                        data = big_message(size, seed=it * 7 + j)
                        deliver(srv.maildir, u, uid, data)
                        originals[u][uid] = data
                srv.start()
                live = sorted(n for n in accounts if n in sent_pw)
                wl = Workload(srv, originals, rng, live)
                threads = [threading.Thread(target=wl.pop3, args=(u,))
                           for u in originals]
                threads.append(threading.Thread(target=wl.admin,
                                                args=(it,)))
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(0.02, 0.3))     # the random moment
                srv.proc.kill()                     # kill -9
                srv.proc.wait(10)
                wl.stop.set()
                for t in threads:
                    t.join(15)
                    self.assertFalse(t.is_alive(), "a worker hung; " + ctx)
                srv.stop()
                self.assertEqual(wl.problems, [], "iteration %d; %s"
                                 % (it, ctx))
                total_ops += wl.ops
                if len(wl.add_sent) > len(wl.add_acked) or \
                        len(wl.maybe_deleted) > len(wl.deleted):
                    killed_busy += 1
                # the maildrops, with the server down
                for u in originals:
                    files = maildrop_files(srv.maildir, u)
                    for base, copies in files.items():
                        dup = re.fullmatch(r"(.+)\.I\d+", base)
                        if base not in originals[u] and dup and \
                                dup.group(1) in originals[u]:
                            self.fail("%s: %s is now also %r: one message "
                                      "under two names (a new/ -> cur/ move "
                                      "cut by kill -9 at iteration %d); %s"
                                      % (u, dup.group(1), copies[0][1], it,
                                         ctx))
                        self.assertIn(base, originals[u],
                                      "%s: unknown file %r after kill at "
                                      "iteration %d; %s" % (u, copies[0][1],
                                                           it, ctx))
                        for sub, name, data in copies:
                            self.assertEqual(data, originals[u][base],
                                             "%s/%s/%s changed; %s"
                                             % (u, sub, name, ctx))
                    for base in list(originals[u]):
                        if (u, base) in wl.deleted:
                            self.assertNotIn(base, files, "%s %s: deleted "
                                             "at an acknowledged QUIT, still "
                                             "there; %s" % (u, base, ctx))
                        elif (u, base) not in wl.maybe_deleted:
                            self.assertIn(base, files, "%s %s: lost (never "
                                          "DELEd) after kill -9 at "
                                          "iteration %d; %s"
                                          % (u, base, it, ctx))
                        if base not in files:
                            del originals[u][base]
                # the users file, with the server down: it parses and has
                # every acknowledged change
                accounts = parse_users_file(srv.users_file)
                sent_pw.update(wl.add_sent)
                acked_adds |= set(wl.add_acked)
                del_sent |= wl.del_sent
                del_acked |= wl.del_acked
                for name in sorted(acked_adds - del_sent):
                    self.assertIn(name, accounts, "acknowledged ADD_USER %s "
                                  "lost after kill -9 at iteration %d; %s"
                                  % (name, it, ctx))
                for name in sorted(del_acked):
                    self.assertNotIn(name, accounts, "acknowledged "
                                     "DELETE_USER %s undone; %s"
                                     % (name, ctx))
                self.assertLessEqual(set(accounts), set(BASE_USERS)
                                     | set(sent_pw), ctx)
                for u in BASE_USERS:
                    self.assertIn(u, accounts)
                # the server starts with that file, knows exactly those
                # users, and the ones acknowledged this time log in
                srv.start()
                m = mgmt(srv)
                self.assertEqual(sorted(m.users()), sorted(accounts), ctx)
                m.close()
                check = sorted(n for n in wl.add_acked if n in accounts)
                older = sorted(n for n in accounts if n in sent_pw
                               and n not in wl.add_acked)
                check += rng.sample(older, min(2, len(older)))
                for name in check[:8]:
                    r = pop3_pass_reply(srv, name, sent_pw[name])
                    self.assertTrue(r.startswith("+OK"), "%s after "
                                    "restart: %r; %s" % (name, r, ctx))
                srv.stop()
            if os.environ.get("HARDENING_VERBOSE"):
                print("\n%s: %d acknowledged operations, %d kills with "
                      "work in flight, %d users added, %d deleted, %d "
                      "messages left" % (ctx, total_ops, killed_busy,
                                         len(acked_adds), len(del_acked),
                                         sum(len(v) for v in
                                             originals.values())))
            self.assertGreater(total_ops, self.ITERATIONS,
                               "the workload hardly ran; " + ctx)
            self.assertGreater(killed_busy, self.ITERATIONS // 3,
                               "few kills landed while work was in flight; "
                               + ctx)
            # a last look: every remaining message is served, once
            srv.start()
            for u in originals:
                c = srv.client()
                c.login(u, BASE_USERS[u])
                uids = [ln.split(" ")[1] for ln in c.multi_lines("UIDL")]
                self.assertEqual(sorted(uids), sorted(originals[u]), u)
                c.quit()


class UsersFileFailures(HardTest):
    """An MGMT change the server cannot save gets -ERR [SYS/TEMP], the
    file on disk stays as it was, and the change does not happen: not in
    memory now, not in the file at a later save, not after a restart."""

    USERS = {"admin": ADMIN_PW, "alice": "secret", "bob": "hunter2"}
    NEW_ADMIN_PW = "New-Adm-pw-1"
    # (command, what must be unchanged after it was refused)
    CHANGES = [
        ("ADD_USER eve Eve-pw-1", "users"),
        ("DELETE_USER bob", "users"),
        ("RESET_USER_PASSWORD alice", "alice password"),
        ("CHANGE_PASSWORD %s %s" % (ADMIN_PW, NEW_ADMIN_PW),
         "admin password"),
        ("MAX_USERS 50", "MAX USERS"),
        ("MAX_CONNEC 7", "MAX CONNECTIONS"),
        ("IDLE_TIMEOUT 99", "IDLE TIMEOUT"),
        ("FILTER cat", "filter"),
    ]

    def state(self, m):
        """What an MGMT change could alter that one session can see."""
        st = m.status()
        return {"users": m.users(), "MAX USERS": st["MAX USERS"],
                "MAX CONNECTIONS": st["MAX CONNECTIONS"],
                "IDLE TIMEOUT": st["IDLE TIMEOUT"],
                "filter": m.run("FILTER")[1]}

    def old_passwords_work(self, srv):
        self.assertTrue(pop3_pass_reply(srv, "alice", "secret")
                        .startswith("+OK"), "alice's password changed "
                        "although RESET_USER_PASSWORD was refused")
        m = mgmt(srv, login=False)
        m.text()
        m.ask("USER admin")
        r = m.ask("PASS " + ADMIN_PW)
        m.close()
        self.assertEqual(r, "+OK PASS", "the admin password changed "
                         "although CHANGE_PASSWORD was refused")

    def refuse_all(self, srv, m, before_file, before, fs_dir, exact=True,
                   can_connect=True):
        for cmd, what in self.CHANGES:
            with self.subTest(cmd=cmd):
                r = m.ask(cmd)
                if exact:
                    self.assertEqual(r, CANNOT_SAVE, cmd)
                else:
                    self.assertTrue(r.startswith("-ERR [SYS/TEMP]"),
                                    "%s -> %r" % (cmd, r))
                with open(srv.users_file, "rb") as f:
                    self.assertEqual(f.read(), before_file,
                                     "%s changed the file" % cmd)
                if what in before:
                    now = self.state(m)
                    self.assertEqual(now[what], before[what],
                                     "%s was refused but happened in "
                                     "memory" % cmd)
                elif can_connect:
                    self.old_passwords_work(srv)
                if fs_dir is not None:
                    left = [n for n in os.listdir(fs_dir) if ".tmp." in n]
                    self.assertEqual(left, [], "temporary file left")
        self.assertIsNone(srv.proc.poll(), "server died")

    def restart_from_file(self, srv):
        """Restarts with the users file alone (no -u, which would
        re-create users and reset passwords)."""
        srv.stop()
        srv.users = {}
        srv.start()

    def accept_all_then(self, srv, m):
        """Once the file can be written: every change is acknowledged,
        is in the file, and is what a restart comes back with."""
        for cmd, _ in self.CHANGES:
            first, _ = m.run(cmd)
            self.assertTrue(first.startswith("+OK"), "%s -> %r"
                            % (cmd, first))
        m.close()
        acc = parse_users_file(srv.users_file)
        self.assertEqual(sorted(acc), ["admin", "alice", "eve"])
        self.restart_from_file(srv)
        m = mgmt(srv, password=self.NEW_ADMIN_PW)
        st = m.status()
        self.assertEqual((st["MAX USERS"], st["MAX CONNECTIONS"],
                          st["IDLE TIMEOUT"]), (50, 7, 99))
        self.assertEqual(m.users(), ["admin", "alice", "eve"])
        self.assertEqual(m.run("FILTER")[1], ["FILTER: cat"])
        m.close()
        self.assertTrue(pop3_pass_reply(srv, "eve", "Eve-pw-1")
                        .startswith("+OK"))
        self.assertTrue(pop3_pass_reply(srv, "alice", "alice")
                        .startswith("+OK"))

    def run_case(self, fs_options, break_fs, mend_fs):
        with TmpfsUsersServer(users=self.USERS,
                              fs_options=fs_options) as srv:
            m = mgmt(srv)
            with open(srv.users_file, "rb") as f:
                before_file = f.read()
            before = self.state(m)
            undo = break_fs(srv)
            self.refuse_all(srv, m, before_file, before, srv.fs)
            self.assertEqual(self.state(m), before)
            mend_fs(srv, undo)
            self.accept_all_then(srv, m)

    def test_full_file_system(self):
        self.run_case("size=128k", lambda srv: srv.fill(),
                      lambda srv, filler: os.unlink(filler))

    def test_save_failure_logged_with_its_cause(self):
        # The log names the system error of the failing call, so an
        # administrator can tell a full disk from a permission problem.
        with TmpfsUsersServer(users=self.USERS, fs_options="size=128k") \
                as srv:
            m = mgmt(srv)
            srv.fill()
            self.assertEqual(m.ask("ADD_USER eve Eve-pw-1"), CANNOT_SAVE)
            m.close()
            self.assertTrue(srv.wait_log(r"error: mgmt\[\d+\] cannot save "
                                         r"the users file: No space left "
                                         r"on device$"), srv.log_text())

    def test_no_inode_left(self):
        def mend(srv, made):
            for p in made:
                os.unlink(p)
        self.run_case("size=1m,nr_inodes=64", lambda srv: srv.fill_inodes(),
                      mend)

    def test_read_only_file_system(self):
        self.run_case("size=128k", lambda srv: remount(srv.fs, "ro"),
                      lambda srv, _: remount(srv.fs, "rw"))

    def test_no_descriptor_left(self):
        # RLIMIT_NOFILE 64 and a flood of MGMT connections: the save
        # cannot open its temporary file (EMFILE), nor can anything that
        # would re-read the old file.
        with Server(users=self.USERS, preexec_fn=nofile_limit(64),
                    args=["-m", "1000"]) as srv:
            m = mgmt(srv)
            with open(srv.users_file, "rb") as f:
                before_file = f.read()
            before = self.state(m)
            flood = []
            try:
                for _ in range(80):
                    flood.append(socket.create_connection(
                        ("127.0.0.1", srv.mgmt_port), timeout=5))
                self.assertTrue(wait_until(lambda: fd_count(srv.pid) >= 63,
                                           5), "descriptors not exhausted")
                self.refuse_all(srv, m, before_file, before, None,
                                exact=False, can_connect=False)
            finally:
                for s in flood:
                    s.close()
            self.assertTrue(wait_until(lambda: fd_count(srv.pid) < 40, 5))
            with self.subTest(phase="in memory after the flood"):
                self.assertEqual(self.state(m), before, "changes refused "
                                 "at EMFILE are in force")
            with self.subTest(phase="old passwords"):
                self.old_passwords_work(srv)
            # a refused change must not come back with the next save
            m.ok("ADD_USER zed Zed-pw-1")
            m.close()
            with open(srv.users_file) as f:
                text = f.read()
            with self.subTest(phase="the next save"):
                self.assertEqual(sorted(parse_users_file(srv.users_file)),
                                 ["admin", "alice", "bob", "zed"],
                                 "a refused change was saved later")
                for key in ("max_users=", "max_connections=",
                            "idle_timeout=", "%filter"):
                    self.assertNotIn(key, text, "a refused setting was "
                                     "saved later: " + key)
            self.restart_from_file(srv)
            m = mgmt(srv)
            with self.subTest(phase="after a restart"):
                now = self.state(m)
                self.assertEqual(now["users"],
                                 ["admin", "alice", "bob", "zed"])
                for key in ("MAX USERS", "MAX CONNECTIONS", "IDLE TIMEOUT",
                            "filter"):
                    self.assertEqual(now[key], before[key], key)
            m.close()
            self.old_passwords_work(srv)


class MessageFileChanges(HardTest):
    """Another program changes a message file during a session."""

    def big(self, srv, size=20 << 20):
        path = os.path.join(srv.user_dir("alice"), "cur",
                            "1800000000.M1.big:2,")
        data = big_message(size, seed=11)
        with open(path, "wb") as f:
            f.write(data)
        return path, data, len(ALICE) + 1

    def first_mib(self, srv, n):
        """Logs alice in with a small window, sends RETR n and reads the
        +OK and the first MiB: the rest of the file is still unread."""
        c = srv.client(timeout=10)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.login()
        c.send("RETR %d\r\n" % n)
        self.assertTrue(c.line().startswith(b"+OK"))
        got = bytearray(c.buf)
        c.buf = b""
        while len(got) < (1 << 20):
            chunk = c.sock.recv(65536)
            self.assertTrue(chunk, "closed after %d octets" % len(got))
            got += chunk
        return c, got

    def test_truncated_while_streaming_closes_without_terminator(self):
        with Server(users={"alice": "secret", "bob": "hunter2"}) as srv:
            path, data, n = self.big(srv)
            other = srv.client()
            other.login("bob", "hunter2")
            c, got = self.first_mib(srv, n)
            os.truncate(path, 1000)
            rest, closed = read_until_close(c, 5.0, total_s=30)
            got += rest
            self.assertTrue(closed, "the connection stayed open after the "
                            "file shrank mid-stream")
            self.assertFalse(got.endswith(b"\r\n.\r\n"),
                             "a truncated message was ended with '.'")
            self.assertLess(len(got), len(stuff(wire_form(data))))
            c.close()
            self.assertTrue(srv.wait_log(
                r"user=alice closed by the server: a message could not be "
                r"sent whole", 5),
                "the cause of the close is not logged")
            self.assertTrue(srv.wait_log(
                r"user=alice logout .*reason=disconnect$", 5),
                "no reason=disconnect summary")
            self.assertTrue(other.cmd("NOOP").startswith("+OK"))
            other.quit()
            # the next session serves what the file is now, exactly
            c = srv.client()
            c.login()
            with open(path, "rb") as f:
                now = f.read()
            first, body = c.multi("RETR %d" % n)
            self.assertTrue(first.startswith("+OK"), first)
            self.assertEqual(unstuff(body), wire_form(now))
            c.quit()

    def test_rewritten_in_place_is_not_sent(self):
        # Same length, other line ends: the listed size is no longer the
        # size on the wire, and the content is not the listed message.
        with Server(users={"alice": "secret"}) as srv:
            path = os.path.join(srv.user_dir("alice"), "cur",
                                "1800000000.M1.rw:2,")
            old = b"From: a@b\nSubject: t\n\nline1\nline2\n"
            new = b"From: a@b\r\nSubject: t\r\n\r\nlin1\r\nl2\r"
            self.assertEqual(len(old), len(new))
            with open(path, "wb") as f:
                f.write(old)
            os.utime(path, (1800000000, 1800000000))
            n = len(ALICE) + 1
            c = srv.client()
            c.login()
            self.assertEqual(c.cmd("LIST %d" % n),
                             "+OK %d %d\r\n" % (n, len(wire_form(old))))
            with open(path, "r+b") as f:
                f.write(new)
            self.assertEqual(c.cmd("RETR %d" % n), "-ERR [SYS/TEMP] "
                             "message %d is not available\r\n" % n)
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            c.quit()
            # the next session lists and serves what the file is now
            c = srv.client()
            c.login()
            self.assertEqual(c.cmd("LIST %d" % n),
                             "+OK %d %d\r\n" % (n, len(wire_form(new))))
            first, body = c.multi("RETR %d" % n)
            self.assertEqual(unstuff(body), wire_form(new))
            c.quit()

    def test_rewritten_while_streaming_closes_without_terminator(self):
        with Server(users={"alice": "secret"}) as srv:
            path, data, n = self.big(srv)
            c, got = self.first_mib(srv, n)
            # the same length, but no line ends left: fewer octets sent
            with open(path, "r+b") as f:
                f.write(data.replace(b"\n", b" "))
            rest, closed = read_until_close(c, 5.0, total_s=30)
            got += rest
            self.assertTrue(closed, "the connection stayed open after the "
                            "file was rewritten mid-stream")
            self.assertFalse(got.endswith(b"\r\n.\r\n"), "a message that "
                             "does not match its +OK was ended with '.'")
            c.close()
            self.assertTrue(srv.wait_log(
                r"user=alice message stream: the file changed while it "
                r"was sent", 5), "the cause of the close is not logged")

    def test_removed_while_streaming_is_still_sent_whole(self):
        with Server(users={"alice": "secret"}) as srv:
            path, data, n = self.big(srv, 4 << 20)
            c = srv.client(timeout=10)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.login()
            c.send("RETR %d\r\n" % n)
            self.assertTrue(c.line().startswith(b"+OK"))
            while len(c.buf) < 65536:
                chunk = c.sock.recv(65536)
                self.assertTrue(chunk, "closed early")
                c.buf += chunk
            os.unlink(path)
            body = c.multiline()
            self.assertEqual(unstuff(body), wire_form(data))
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            r = c.cmd("RETR %d" % n)
            self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
            first, body = c.multi("RETR 1")
            self.assertEqual(body, stuff(ALICE_WIRES[0]))
            c.quit()

    def test_replaced_by_directory_symlink_or_fifo(self):
        with Server(users={"alice": "secret", "bob": "hunter2"}) as srv:
            outside = os.path.join(srv.tmp, "secret.txt")
            cur = os.path.join(srv.user_dir("alice"), "cur")
            c = srv.client(timeout=5)
            c.login()
            names = {}
            for ln in c.multi_lines("UIDL"):
                num, uid = ln.split(" ")
                names[int(num)] = [f for f in os.listdir(cur)
                                   if f.split(":")[0] == uid][0]
            other = srv.client(timeout=3)
            other.login("bob", "hunter2")
            fifo = None
            blocked = None
            try:
                for num, kind in ((1, "directory"), (2, "symlink"),
                                  (3, "fifo")):
                    p = os.path.join(cur, names[num])
                    size = os.path.getsize(p)
                    os.unlink(p)
                    if kind == "directory":
                        os.mkdir(p)
                    elif kind == "symlink":
                        with open(outside, "wb") as f:
                            f.write(b"S" * size)    # the same size
                        os.symlink(outside, p)
                    else:
                        os.mkfifo(p)
                        fifo = p
                    for cmd in ("RETR %d" % num, "TOP %d 0" % num):
                        try:
                            r = c.cmd(cmd)
                        except (socket.timeout, TimeoutError):
                            try:
                                other.cmd("NOOP")
                                others = "another client was served"
                            except (socket.timeout, TimeoutError):
                                others = "another client got no answer " \
                                    "either: the whole server is blocked"
                            blocked = "%s of a message replaced by a %s: " \
                                "no answer in 5 s; %s" % (cmd, kind, others)
                            break
                        self.assertTrue(r.startswith("-ERR [SYS/TEMP]"),
                                        "%s (%s) -> %r" % (cmd, kind, r))
                        t0 = time.monotonic()
                        self.assertTrue(other.cmd("NOOP").startswith("+OK"))
                        self.assertLess(time.monotonic() - t0, 1.0)
                    if blocked:
                        break
                    self.assertTrue(c.cmd("NOOP").startswith("+OK"))
                if blocked is None:
                    first, body = c.multi("RETR 4")
                    self.assertEqual(body, stuff(ALICE_WIRES[3]))
                    c.quit()
                    other.quit()
            finally:
                if fifo is not None:
                    # let a server blocked in open() go on, so it can stop
                    for _ in range(20):
                        try:
                            os.close(os.open(fifo,
                                             os.O_WRONLY | os.O_NONBLOCK))
                        except OSError:
                            pass
                        time.sleep(0.05)
                c.close()
                other.close()
            if blocked:
                self.fail(blocked)

    def test_removed_after_dele_then_quit(self):
        with Server(users={"alice": "secret"}) as srv:
            cur = os.path.join(srv.user_dir("alice"), "cur")
            c = srv.client()
            c.login()
            before = sorted(os.listdir(cur))
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
            self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
            os.unlink(os.path.join(cur, before[0]))
            # Gone either way, as the client asked: Dovecot's +OK too.
            r = c.quit()
            self.assertTrue(r.startswith("+OK"), r)
            self.assertEqual(sorted(os.listdir(cur)), before[2:])
            c = srv.client()
            c.login()
            self.assertTrue(c.cmd("STAT").startswith("+OK %d "
                                                     % (len(ALICE) - 2)))
            c.quit()

    def test_replaced_after_dele_then_quit_is_no_ok(self):
        # Another program rewrote the file (a copy renamed over it, as
        # Python's mailbox does to change flags): another inode under
        # the same unique name.  It is not the listed file, so it is not
        # deleted for it; the next login lists it under the same UIDL,
        # so the QUIT must not answer +OK.
        with Server(users={"alice": "secret"}) as srv:
            cur = os.path.join(srv.user_dir("alice"), "cur")
            tmp = os.path.join(srv.user_dir("alice"), "tmp")
            c = srv.client()
            c.login()
            uid = c.cmd("UIDL 1").split()[2]
            name = [n for n in os.listdir(cur) if n.split(":")[0] == uid][0]
            self.assertTrue(c.cmd("DELE 1").startswith("+OK"))
            self.assertTrue(c.cmd("DELE 2").startswith("+OK"))
            shutil.copy2(os.path.join(cur, name), os.path.join(tmp, "rw"))
            os.rename(os.path.join(tmp, "rw"), os.path.join(cur, name))
            r = c.quit()
            self.assertEqual(r, "-ERR [SYS/TEMP] not every message could "
                             "be deleted (1 failed)\r\n")
            self.assertTrue(os.path.exists(os.path.join(cur, name)))
            self.assertTrue(srv.wait_log(
                r"user=alice 1 deletions failed \(the first, %s: a file "
                r"with its name remains\)" % re.escape(name), 5),
                srv.log_text())
            # The access log counts what was removed: one of two.
            self.assertTrue(srv.wait_log(
                r"user=alice logout .* dele=1/%d .*reason=quit" % len(ALICE),
                5), srv.log_text())
            c = srv.client()
            c.login()
            self.assertEqual(c.cmd("UIDL 1").split()[2], uid)
            self.assertTrue(c.cmd("STAT").startswith("+OK %d "
                                                     % (len(ALICE) - 1)))
            c.quit()

    def test_interrupted_move_from_new_is_served_once_and_stays_deleted(
            self):
        # A kill -9 between link(new/X, cur/X:2,) and unlink(new/X) at
        # login leaves one message under two names, one in each folder
        # (the window is two system calls wide, so the state is set up
        # here rather than hit by the kill loop).  The next session must
        # list it once, not twice, and once DELEd and QUIT it must be
        # gone for good.
        with Server(users={"alice": "secret"}) as srv:
            d = srv.user_dir("alice")
            name = "1700000007.M7P1.fixture"
            os.link(os.path.join(d, "new", name),
                    os.path.join(d, "cur", name + ":2,"))
            c = srv.client()
            c.login()
            r = c.cmd("STAT")
            uids = [ln.split(" ")[1] for ln in c.multi_lines("UIDL")]
            self.assertTrue(r.startswith("+OK %d " % len(ALICE)),
                            "one message under two names after an "
                            "interrupted move is served twice: %r %r"
                            % (r, uids))
            for i in range(1, len(uids) + 1):
                self.assertTrue(c.cmd("DELE %d" % i).startswith("+OK"))
            c.quit()
            c = srv.client()
            c.login()
            r = c.cmd("STAT")
            left = c.multi_lines("UIDL")
            c.quit()
            self.assertTrue(r.startswith("+OK 0 0"), "deleted mail came "
                            "back: %r %r" % (r, left))
