"""Resource exhaustion: running out of descriptors for real (EMFILE, not
the configured connection ceiling that tests/protocol covers), 1,000
slowloris clients, hundreds of clients that pipeline without reading,
a client that never reads a RETR answer, and a --log file on a full
file system."""
import os
import re
import select
import socket
import time

from hardlib import (Client, HardTest, Server, TmpfsUsersServer, USERS,
                     asan_env, big_message, cpu_ns, fd_count,
                     fixture_messages, mem_kb, mgmt, nofile_limit,
                     raise_own_nofile, read_until_close, stuff, wait_until,
                     wire_form)

ALICE = fixture_messages("alice")
ALICE_WIRES = [wire_form(m[1]) for m in ALICE]
BOB_WIRES = [wire_form(m[1]) for m in fixture_messages("bob")]
BUSY = b"-ERR [SYS/TEMP]"
MGMT_BUSY = b"-ERR SERVER BUSY, TRY AGAIN LATER\r\n"   # admin_monitor: 1


def greeting_or_close(sock_or_client, timeout):
    """The first line a new connection gets, b'' when it is closed
    without one, None when nothing comes within timeout."""
    c = sock_or_client
    try:
        c.sock.settimeout(timeout)
        return c.line()
    except EOFError:
        return b""
    except ConnectionResetError:
        return b""
    except (socket.timeout, TimeoutError):
        return None


def greetings(clients, seconds):
    """greeting_or_close() for many clients within one shared deadline."""
    deadline = time.monotonic() + seconds
    return [greeting_or_close(c, max(0.05, deadline - time.monotonic()))
            for c in clients]


def refused_cleanly(c, timeout=5.0):
    """True when a new connection is told -ERR [SYS/TEMP] (or gets a
    plain close) and is then closed by the server."""
    g = greeting_or_close(c, timeout)
    if g is None:
        return False
    if g == b"":
        return True
    return g.startswith(BUSY) and c.closed(timeout)


def retr_all_exact(test, c):
    """RETRs every alice fixture message on a logged-in client and checks
    each byte for byte."""
    for i, wire in enumerate(ALICE_WIRES, 1):
        first, body = c.multi("RETR %d" % i)
        test.assertTrue(first.startswith("+OK"), "RETR %d -> %r" % (i, first))
        test.assertEqual(body, stuff(wire), "RETR %d not byte-exact" % i)


class DescriptorExhaustion(HardTest):
    """RLIMIT_NOFILE 64: the descriptors themselves run out (accept(2)
    fails with EMFILE), which the connection ceiling alone never
    reaches.  The server must refuse cleanly, not spin on a listener it
    cannot accept from, keep its open sessions working, and recover."""

    NOFILE = 64

    def test_emfile_from_mgmt_sessions_refused_no_spin_recovers(self):
        # MGMT sessions are not counted against the POP3 ceiling, so a
        # local flood of them exhausts the descriptors themselves.
        with Server(users=USERS, preexec_fn=nofile_limit(self.NOFILE),
                    args=["-m", "1000"]) as srv:
            m = mgmt(srv)
            waiting = srv.client()          # in AUTHORIZATION
            self.assertTrue(waiting.greeting().startswith("+OK"))
            bob = srv.client()
            bob.login("bob", "hunter2")
            baseline = fd_count(srv.pid)
            flood = []
            try:
                for _ in range(self.NOFILE + 16):
                    flood.append(Client(srv.mgmt_port, timeout=5))
                kinds = greetings(flood, 5)
                served = [k for k in kinds if k and k.startswith(b"+OK")]
                refused = [k for k in kinds if k is not None
                           and not (k.startswith(b"+OK"))]
                self.assertEqual(kinds.count(None), 0, "%d of %d MGMT "
                                 "clients got neither a greeting nor a "
                                 "refusal in 5 s at EMFILE"
                                 % (kinds.count(None), len(kinds)))
                self.assertTrue(refused, "the flood never reached EMFILE")
                self.assertTrue(all(k in (b"", MGMT_BUSY) for k in refused),
                                set(refused))
                self.assertGreater(len(served), 0)
                self.assertGreaterEqual(fd_count(srv.pid), self.NOFILE - 1,
                                        "descriptors not exhausted")

                # new POP3 clients: refused cleanly, never left hanging
                for _ in range(5):
                    c = srv.client(timeout=5)
                    self.assertTrue(refused_cleanly(c),
                                    "POP3 client at EMFILE not refused "
                                    "cleanly")
                    c.close()

                # no busy loop while saturated, with clients knocking on
                # both listeners
                knock = [socket.create_connection(("127.0.0.1", port),
                                                  timeout=5)
                         for port in (srv.port, srv.mgmt_port)
                         for _ in range(10)]
                try:
                    t0 = cpu_ns(srv.pid)
                    time.sleep(2.0)               # the measuring window
                    spent = (cpu_ns(srv.pid) - t0) / 1e9
                finally:
                    for s in knock:
                        s.close()
                self.assertLess(spent, 0.3, "server burnt %.2f s of CPU in "
                                "2 s at EMFILE (busy loop?)" % spent)

                # the open sessions go on: a RETR that cannot open its
                # file and a login that cannot open the maildrop get
                # [SYS/TEMP], and the sessions stay usable
                r = bob.cmd("RETR 1")
                self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
                self.assertTrue(bob.cmd("NOOP").startswith("+OK"))
                self.assertTrue(waiting.cmd("USER alice").startswith("+OK"))
                r = waiting.cmd("PASS secret")
                self.assertTrue(r.startswith("-ERR [SYS/TEMP]"), r)
                self.assertTrue(m.ask("NOOP").startswith("+OK"))
                self.assertIsNone(srv.proc.poll(), "server died")
            finally:
                for c in flood:
                    c.close()

            # recovery once descriptors are free again
            self.assertTrue(wait_until(lambda: fd_count(srv.pid)
                                       <= baseline + 1, 5),
                            "descriptors not released: %d (baseline %d)"
                            % (fd_count(srv.pid), baseline))
            first, body = bob.multi("RETR 1")
            self.assertTrue(first.startswith("+OK"), first)
            self.assertEqual(body, stuff(BOB_WIRES[0]))
            # the failed login released alice's lock: another
            # connection gets it (the lock lets its holder back in,
            # released or not), then the same one does
            other = srv.client()
            other.login("alice", "secret")
            other.quit()
            self.assertTrue(waiting.cmd("USER alice").startswith("+OK"))
            r = waiting.cmd("PASS secret")
            self.assertTrue(r.startswith("+OK"), "login after EMFILE: " + r)
            retr_all_exact(self, waiting)
            waiting.quit()
            c = srv.client()
            c.login("admin", USERS["admin"])
            c.quit()
            bob.quit()
            m.close()
            # named like every refusal: by the client's address
            self.assertRegex(srv.log_text(), r"pop3 127\.0\.0\.1:\d+ "
                             r"refused: out of descriptors")

    def test_emfile_from_filter_pipes_remote_clients_only(self):
        # A remote attacker alone: with a RETR filter every RETR holds
        # four more descriptors, so logged-in clients that RETR exhaust
        # the descriptors before the connection ceiling (24 here).
        filt = ('if [ "$POP3_USERNAME" = alice ]; then exec cat; '
                'else exec sleep 30; fi')
        users = {"u%02d" % i: "pw-%02d" % i for i in range(24)}
        users["alice"] = "secret"
        with Server(users=users, preexec_fn=nofile_limit(self.NOFILE),
                    args=["-m", "1000", "-t", filt,
                          "--filter-timeout", "3"]) as srv:
            for u in users:
                if u.startswith("u"):
                    d = os.path.join(srv.maildir, u, "cur")
                    os.makedirs(d)
                    with open(os.path.join(d, "1800000000.M1.x:2,"),
                              "wb") as f:
                        f.write(b"Subject: x\n\nhello\n")
            baseline = fd_count(srv.pid)
            attackers = []
            peak = 0
            try:
                for u in sorted(users):
                    if u == "alice":
                        continue
                    c = srv.client(timeout=5)
                    attackers.append(c)
                    g = greeting_or_close(c, 5)
                    if not g or not g.startswith(b"+OK"):
                        continue
                    c.cmd("USER " + u)
                    if c.cmd("PASS " + users[u]).startswith("+OK"):
                        c.send("RETR 1\r\n")
                    time.sleep(0.02)
                    peak = max(peak, fd_count(srv.pid))
                wait_until(lambda: fd_count(srv.pid) >= self.NOFILE - 1, 3)
                peak = max(peak, fd_count(srv.pid))
                self.assertGreaterEqual(peak, self.NOFILE - 1,
                                        "descriptors never ran out (peak "
                                        "%d): the scenario did not happen"
                                        % peak)
                for _ in range(5):
                    c = srv.client(timeout=5)
                    self.assertTrue(refused_cleanly(c),
                                    "new client at EMFILE not refused "
                                    "cleanly")
                    c.close()
                t0 = cpu_ns(srv.pid)
                knock = [socket.create_connection(("127.0.0.1", srv.port),
                                                  timeout=5)
                         for _ in range(10)]
                time.sleep(2.0)                   # the measuring window
                spent = (cpu_ns(srv.pid) - t0) / 1e9
                for s in knock:
                    s.close()
                self.assertLess(spent, 0.3, "server burnt %.2f s of CPU in "
                                "2 s at EMFILE" % spent)
                self.assertIsNone(srv.proc.poll(), "server died")
            finally:
                for c in attackers:
                    c.close()
            # the attackers' silent filters are killed at their time
            # limit (a closed client is only found by writing to it)
            # and their pipes closed
            self.assertTrue(wait_until(lambda: fd_count(srv.pid)
                                       <= baseline + 1, 10),
                            "descriptors not released: %d (baseline %d)"
                            % (fd_count(srv.pid), baseline))
            c = srv.client()
            c.login()
            retr_all_exact(self, c)
            c.quit()


class Slowloris(HardTest):
    """1,000 clients that each send one byte every 2 s and never finish a
    line.  They hold a connection each, nothing more: a new client logs
    in and retrieves its mail at once, every round."""

    LIMIT = 120
    COUNT = 1000

    def test_1000_slow_clients_do_not_lock_out_a_new_client(self):
        raise_own_nofile(self.COUNT + 200)
        with Server(users={"alice": "secret", "admin": USERS["admin"]},
                    idle=600, args=["-m", "3000"]) as srv:
            m = srv.wait_log(r"ready: max (\d+) connections", 5)
            self.assertIsNotNone(m)
            self.assertGreater(int(m.group(1)), self.COUNT + 10,
                               "the connection limit (%s) cannot hold %d "
                               "slow clients: the server's descriptor "
                               "limit is too low" % (m.group(1),
                                                     self.COUNT))
            slow = []
            try:
                for _ in range(self.COUNT):
                    slow.append(socket.create_connection(
                        ("127.0.0.1", srv.port), timeout=10))
                # every slow client is a real session: it is greeted
                pending = {s.fileno(): s for s in slow}
                got = {}
                deadline = time.monotonic() + 20
                while pending and time.monotonic() < deadline:
                    r, _, _ = select.select(list(pending.values()), [], [],
                                            0.5)
                    for s in r:
                        got[s.fileno()] = s.recv(256)
                        del pending[s.fileno()]
                self.assertFalse(pending, "%d slow clients never greeted"
                                 % len(pending))
                self.assertTrue(all(g.startswith(b"+OK")
                                    for g in got.values()),
                                set(g for g in got.values()
                                    if not g.startswith(b"+OK")))
                adm = mgmt(srv)
                live = adm.status()["LIVE CONNECTIONS"]
                self.assertGreaterEqual(live, self.COUNT)
                times = []
                drip = b"NOOPNOOP"
                for rnd in range(4):
                    t_round = time.monotonic()
                    for s in slow:
                        s.send(drip[rnd:rnd + 1])
                    t0 = time.monotonic()
                    c = srv.client(timeout=10)
                    c.login()
                    r = c.cmd("STAT")
                    self.assertTrue(r.startswith("+OK %d " % len(ALICE)), r)
                    retr_all_exact(self, c)
                    c.quit()
                    times.append(time.monotonic() - t0)
                    left = 2.0 - (time.monotonic() - t_round)
                    if left > 0:
                        time.sleep(left)          # the drip interval
                self.assertLess(max(times), 3.0, "login + RETR of every "
                                "message with %d slow clients took %s s"
                                % (self.COUNT, ["%.2f" % t for t in times]))
                # a quiet server with 1,000 idle connections does not spin
                t0 = cpu_ns(srv.pid)
                time.sleep(1.0)                   # the measuring window
                spent = (cpu_ns(srv.pid) - t0) / 1e9
                self.assertLess(spent, 0.3, "%.2f s of CPU in 1 s with "
                                "%d idle clients" % (spent, self.COUNT))
                # the slow clients were neither answered nor dropped
                r, _, _ = select.select(slow, [], [], 0)
                self.assertEqual(r, [], "%d slow clients got data or were "
                                 "closed" % len(r))
                self.assertGreaterEqual(adm.status()["LIVE CONNECTIONS"],
                                        self.COUNT)
                adm.close()
            finally:
                for s in slow:
                    s.close()
            self.assertIsNone(srv.proc.poll(), "server died")

    def test_trickled_bytes_do_not_defer_the_autologout(self):
        # A command, not a byte, resets the idle timer (RFC 1939 section
        # 3): clients that trickle a byte of a never-ending line every
        # 0.5 s are logged out at the idle timeout, before and after
        # login, while one sending whole commands as slowly stays.
        idle = 2
        users = {"u%d" % i: "pw-%d" % i for i in range(10)}
        users["bob"] = "hunter2"
        with Server(users=users, idle=idle) as srv:
            slow = [srv.client(timeout=10) for _ in range(20)]
            for c in slow[:10]:
                c.greeting()
            for i, c in enumerate(slow[10:]):
                c.login("u%d" % i, "pw-%d" % i)
            steady = srv.client(timeout=10)
            steady.login("bob", "hunter2")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2 * idle + 2:
                for c in slow:
                    try:
                        c.send("x")
                    except OSError:
                        pass
                self.assertTrue(steady.cmd("NOOP").startswith("+OK"))
                time.sleep(0.5)
            for c in slow:
                self.assertTrue(c.closed(2.0), "a trickling client was "
                                "never logged out")
                c.close()
            self.assertTrue(steady.quit().startswith("+OK"))
            self.assertEqual(len(re.findall(r"reason=timeout",
                                            srv.log_text())), 20)


class NonReaders(HardTest):
    LIMIT = 120

    def test_300_clients_pipelining_without_reading_bounded_memory(self):
        # tests/protocol has one flooding client; here 300 at once, each
        # with a 1 MB RETR on its way and megabytes of commands behind
        # it: the server's memory stays within its stream budget (64 MiB)
        # plus small per-connection buffers.
        count = 300
        raise_own_nofile(count + 100)
        users = {"u%03d" % i: "pw-%03d" % i for i in range(count)}
        users["bob"] = "hunter2"
        msg = big_message(1 << 20, seed=3)
        with Server(users=users, mail=None, idle=120, start_timeout=60,
                    env=asan_env()) as srv:
            first = None
            for u in users:
                d = os.path.join(srv.maildir, u, "cur")
                os.makedirs(d)
                p = os.path.join(d, "1800000000.M1.big:2,")
                if first is None:
                    with open(p, "wb") as f:
                        f.write(msg)
                    first = p
                else:
                    os.link(first, p)
            clients = []
            try:
                for u in users:
                    if u == "bob":
                        continue
                    c = srv.client(timeout=30)
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                      4096)
                    c.login(u, users[u])
                    clients.append(c)
                other = srv.client()
                other.login("bob", "hunter2")
                base, _ = mem_kb(srv.pid)
                chunk = b"RETR 1\r\n" + b"LIST\r\nNOOP\r\nSTAT\r\n" * 4000
                for c in clients:
                    c.sock.setblocking(False)
                sent = 0
                per = {}
                deadline = time.monotonic() + 8
                live = list(clients)
                while live and time.monotonic() < deadline:
                    _, w, _ = select.select([], [c.sock for c in live], [],
                                            1.0)
                    if not w:
                        break       # nobody can send: everyone is stuck
                    for c in list(live):
                        if c.sock not in w:
                            continue
                        try:
                            n = c.sock.send(chunk)
                        except BlockingIOError:
                            continue
                        sent += n
                        per[c] = per.get(c, 0) + n
                        if per[c] >= (1 << 20):     # 1 MB each is enough
                            live.remove(c)
                rss, hwm = mem_kb(srv.pid)
                growth = (max(rss, hwm) - base) / 1024.0
                self.assertGreater(sent, count * 32768,
                                   "could not even send 32 KiB a client")
                if os.environ.get("HARDENING_VERBOSE"):
                    print("\nsent %d MB, server grew %.1f MB"
                          % (sent >> 20, growth))
                self.assertLess(growth, 64 + count * 32 / 1024.0 + 8,
                                "server grew %.1f MB while %d clients sent "
                                "%d MB without reading" % (growth, count,
                                                           sent >> 20))
                # others are still served at once (a blocked loop would
                # never answer; 2 s leaves room for ASan on a busy CI)
                for _ in range(3):
                    t0 = time.monotonic()
                    self.assertTrue(other.cmd("NOOP").startswith("+OK"))
                    self.assertLess(time.monotonic() - t0, 2.0)
                first_line, body = other.multi("RETR 1")
                self.assertTrue(first_line.startswith("+OK"), first_line)
                other.quit()
                self.assertIsNone(srv.proc.poll(), "server died")
            finally:
                for c in clients:
                    c.close()

    @staticmethod
    def give_alice_a_big_message(srv, size, seed):
        """Writes a big message after alice's fixtures: (path, data)."""
        path = os.path.join(srv.user_dir("alice"), "cur",
                            "1800000000.M1.big:2,")
        data = big_message(size, seed=seed)
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def test_slow_reader_keeps_its_session_past_the_idle_timeout(self):
        """-T 2, a client that reads a 6 MB RETR steadily but slowly
        (about 0.6 MB/s): megabytes wait in the socket buffers, so our
        send() makes no progress for longer than 2 s, yet the client is
        not idle.  It gets the whole message and its session goes on."""
        idle = 2
        with Server(users={"alice": "secret"}, idle=idle) as srv:
            _, data = self.give_alice_a_big_message(srv, 6 << 20, 11)
            n = len(ALICE) + 1
            c = srv.client(timeout=10)
            c.login()
            c.send("RETR %d\r\n" % n)
            got = bytearray(c.buf)
            c.buf = b""
            c.sock.settimeout(10)
            while not got.endswith(b"\r\n.\r\n"):
                chunk = c.sock.recv(8192)
                if not chunk:
                    break
                got += chunk
                time.sleep(0.012)
            first, _, body = bytes(got).partition(b"\r\n")
            self.assertTrue(first.startswith(b"+OK"), first)
            self.assertEqual(body, stuff(wire_form(data)) + b".\r\n",
                             "the slow reader was logged out or lost data")
            self.assertTrue(c.cmd("NOOP").startswith("+OK"))
            c.quit()
            logout = re.compile(r"user=alice logout .*reason=quit")
            self.assertTrue(wait_until(
                lambda: logout.search(srv.log_text()), 3),
                "no 'reason=quit' logout line")

    def test_client_never_reading_retr_is_dropped_by_idle_timer(self):
        idle = 3
        with Server(users={"alice": "secret", "bob": "hunter2"},
                    idle=idle) as srv:
            path, _ = self.give_alice_a_big_message(srv, 20 << 20, 7)
            n = len(ALICE) + 1
            stuck = srv.client(timeout=10)
            stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.login()
            other = srv.client()
            other.login("bob", "hunter2")
            baseline = fd_count(srv.pid)
            stuck.send("RETR %d\r\n" % n)
            t0 = time.monotonic()
            rx = re.compile(r"user=alice logout .*reason=(\w+)")
            worst = 0.0
            reason = None
            while time.monotonic() - t0 < idle + 6:
                t1 = time.monotonic()
                self.assertTrue(other.cmd("NOOP").startswith("+OK"))
                worst = max(worst, time.monotonic() - t1)
                m = rx.search(srv.log_text())
                if m:
                    reason = m.group(1)
                    break
                time.sleep(0.2)
            dropped_after = time.monotonic() - t0
            self.assertEqual(reason, "timeout", "the non-reading client was "
                             "not dropped by the idle timer within %d s"
                             % (idle + 6))
            self.assertGreaterEqual(dropped_after, idle - 0.5)
            self.assertLess(worst, 0.5, "another client waited %.2f s for "
                            "NOOP meanwhile" % worst)
            # its connection and its message file are closed
            self.assertTrue(wait_until(lambda: fd_count(srv.pid)
                                       <= baseline - 1, 3),
                            "descriptors of the dropped session not "
                            "released")
            self.assertTrue(other.cmd("NOOP").startswith("+OK"))
            other.quit()
            got, _ = read_until_close(stuck, 1.0, total_s=3.0)
            self.assertFalse(got.endswith(b"\r\n.\r\n"),
                             "a message cut by the timer ended with '.'")
            stuck.close()
            # nothing deleted and the lock is free
            self.assertTrue(os.path.exists(path))
            c = srv.client()
            c.login()
            r = c.cmd("STAT")
            self.assertTrue(r.startswith("+OK %d " % n), r)
            c.quit()


class TmpfsLogServer(TmpfsUsersServer):
    """Its --log file on the small tmpfs too."""

    def command(self):
        return super().command() + ["--log", self.log_path]

    @property
    def log_path(self):
        return os.path.join(self.fs, "log")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                      r"(error|warning|info|debug): ")


class TmpfsStderrServer(TmpfsUsersServer):
    """No --log: its standard error a plain file on the tmpfs, opened
    without O_APPEND (`2>file`, systemd's StandardError=file:)."""

    def __init__(self, **kw):
        super().__init__(preexec_fn=self._plain_stderr, **kw)

    @property
    def log_path(self):
        return os.path.join(self.fs, "stderr")

    def _plain_stderr(self):
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        os.dup2(fd, 2)
        os.close(fd)


class FullLogDisk(HardTest):
    """A line the full disk cut short would run into the next one (one
    line per event is what every log parser splits on): it is taken
    back, and the lost lines are counted once there is room."""

    def check_full_disk(self, srv):
        filler = srv.fill()
        for _ in range(40):
            c = srv.client()
            c.login("alice", USERS["alice"])
            c.quit()
            c.close()
        os.unlink(filler)
        c = srv.client()
        port = c.sock.getsockname()[1]
        c.login("alice", USERS["alice"])
        c.quit()
        c.close()
        last = b":%d user=alice logout" % port
        self.assertTrue(wait_until(lambda: last in read_bytes(srv.log_path)),
                        "the session after the disk had room again was "
                        "not logged")
        raw = read_bytes(srv.log_path)
        self.assertNotIn(b"\0", raw, "a hole where a line was taken back")
        text = raw.decode("latin-1")
        self.assertTrue(text.endswith("\n"))
        for line in text.splitlines():
            self.assertRegex(line, LOG_LINE)
            self.assertEqual(len(LOG_LINE.findall(line)), 1, line)
        dropped = re.findall(r" warning: (\d+) log lines dropped: "
                             r"No space left on device$", text, re.M)
        self.assertEqual(len(dropped), 1, text[-3000:])
        self.assertGreater(int(dropped[0]), 0)

    def test_log_file_lines_never_glued_and_losses_counted(self):
        with TmpfsLogServer(users=USERS, fs_options="size=64k") as srv:
            self.check_full_disk(srv)

    def test_stderr_file_without_append_gets_no_hole(self):
        with TmpfsStderrServer(users=USERS, fs_options="size=64k") as srv:
            self.check_full_disk(srv)
