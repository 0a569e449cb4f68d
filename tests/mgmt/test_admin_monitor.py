"""bin/admin_monitor: what it prints for every command (greeting, +OK USER,
+OK PASS, the reply without the '.' terminator, +OK GOODBYE), its exit
statuses (0 +OK, 1 -ERR, 2 usage, 3 connection trouble), the password
read from standard input, and its --timeout."""
import os
import subprocess
import threading
import time
import unittest

from mgmtlib import (ADMIN_PW, GREETING, MONITOR_BIN, STATUS_KEYS,
                     FAIL_DELAY_MIN, MgmtServer,
                     ScriptedPeer, SilentListener, free_port, monitor,
                     parse_figures, run_monitor)

HEAD = [GREETING, "+OK USER", "+OK PASS"]
TAIL = ["+OK GOODBYE"]

FLAGS = ["-HELP", "-HISTORIC_CONNEC", "-LIVE_CONNEC", "-BYTES_TRANS",
         "-USERS", "-STATUS", "-MAX_USERS", "-MAX_CONNECTIONS",
         "-IDLE_TIMEOUT", "-TIMEOUT", "-DELETE_USER", "-ADD_USER",
         "-RESET_USER_PASSWORD", "-CHANGE_PASSWORD", "-CAPA", "-NOOP"]


class MonitorCommands(unittest.TestCase):
    """Every command through admin_monitor, on one shared server."""

    @classmethod
    def setUpClass(cls):
        cls.srv = MgmtServer().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def run_ok(self, *args):
        r = self.srv.monitor(*args)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines[:3], HEAD, r)
        self.assertEqual(r.lines[-1:], TAIL, r)
        self.assertNotIn(".", r.lines, r)
        self.assertNotIn("", r.lines, r)
        return r.lines[3:-1]

    def run_err(self, reply, *args):
        r = self.srv.monitor(*args)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.lines, HEAD + [reply] + TAIL, r)

    def raw(self, command):
        m = self.srv.mgmt()
        try:
            return m.run(command)
        finally:
            m.close()

    def status(self):
        m = self.srv.mgmt()
        try:
            return m.status()
        finally:
            m.close()

    def test_noop(self):
        self.assertEqual(self.run_ok("-NOOP"), ["+OK NOOP"])

    def test_status(self):
        out = self.run_ok("-STATUS")
        self.assertEqual(out[0], "+OK STATUS")
        self.assertEqual(sorted(parse_figures(out[1:])), sorted(STATUS_KEYS))
        self.assertEqual(len(out), 1 + len(STATUS_KEYS))

    def test_historic_connec(self):
        out = self.run_ok("-HISTORIC_CONNEC")
        self.assertEqual(out[0], "+OK HISTORIC_CONNEC")
        self.assertRegex("\n".join(out[1:]), r"^HISTORIC CONNECTIONS: \d+$")

    def test_live_connec(self):
        out = self.run_ok("-LIVE_CONNEC")
        self.assertEqual(out[0], "+OK LIVE_CONNEC")
        self.assertRegex("\n".join(out[1:]), r"^LIVE CONNECTIONS: \d+$")

    def test_bytes_trans(self):
        out = self.run_ok("-BYTES_TRANS")
        self.assertEqual(out[0], "+OK BYTES_TRANS")
        self.assertEqual(sorted(parse_figures(out[1:])),
                         ["BYTES RECEIVED", "BYTES SENT"])

    def test_users(self):
        out = self.run_ok("-USERS")
        first, body = self.raw("USERS")
        self.assertEqual(out, [first] + body)
        self.assertEqual(out[1], "USER COUNT: %d" % (len(out) - 3))
        self.assertEqual(out[2], "USER LIST:")

    def test_capa(self):
        out = self.run_ok("-CAPA")
        first, body = self.raw("CAPA")
        self.assertEqual(out, [first] + body)
        self.assertEqual(out[0], "+OK CAPA")

    def test_max_users(self):
        out = self.run_ok("-MAX_USERS", "4242")
        self.assertEqual(out, ["+OK MAX_USERS",
                               "MAX USERS CHANGED SUCCESSFULLY"])
        self.assertEqual(self.status()["MAX USERS"], 4242)

    def test_max_connections(self):
        out = self.run_ok("-MAX_CONNECTIONS", "321")
        self.assertEqual(out, ["+OK MAX_CONNEC CHANGED"])
        self.assertEqual(self.status()["MAX CONNECTIONS"], 321)

    def test_idle_timeout(self):
        out = self.run_ok("-IDLE_TIMEOUT", "123")
        self.assertEqual(out, ["+OK IDLE_TIMEOUT CHANGED"])
        self.assertEqual(self.status()["IDLE TIMEOUT"], 123)

    def test_timeout(self):
        r = self.srv.monitor("-TIMEOUT", "1")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines, HEAD + ["+OK TIMEOUT COMPLETED"] + TAIL, r)
        self.assertGreaterEqual(r.elapsed, 1.0)
        self.assertLess(r.elapsed, 4.0)

    def test_timeout_waits_for_a_longer_pause(self):
        """During another administrator's longer pause the reply comes
        when POP3 resumes: the client waits for it (exit 0), instead of
        giving up after its own pause plus --timeout."""
        other = self.srv.mgmt()
        try:
            other.send("TIMEOUT 5\r\n")
            r = self.srv.monitor("-TIMEOUT", "1", options=["--timeout", "2"])
            self.assertEqual(other.text(), "+OK TIMEOUT COMPLETED")
        finally:
            other.close()
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines, HEAD + ["+OK TIMEOUT COMPLETED"] + TAIL, r)
        self.assertGreaterEqual(r.elapsed, 4.0)

    def test_add_and_delete_user(self):
        out = self.run_ok("-ADD_USER", "quinn", "Quinn-Pw-1")
        self.assertEqual(out, ["+OK ADD_USER", "USER ADDED SUCCESSFULLY"])
        self.assertIn("quinn", self.raw("USERS")[1])
        out = self.run_ok("-DELETE_USER", "quinn")
        self.assertEqual(out, ["+OK DELETE_USER", "USER DELETED SUCCESSFULLY"])
        self.assertNotIn("quinn", self.raw("USERS")[1])

    def test_longest_line_is_sent(self):
        # "FILTER " and 246 octets, with CRLF: the server's 255 exactly.
        # One octet more is refused before connecting (MonitorUsage).
        cmd = "cat #" + "x" * 241
        out = self.run_ok("-FILTER", cmd)
        self.assertEqual(out, ["+OK FILTER", "FILTER: " + cmd])
        self.run_ok("-FILTER", "-")

    def test_reset_user_password(self):
        out = self.run_ok("-RESET_USER_PASSWORD", "bob")
        self.assertEqual(out, ["+OK RESET_USER_PASSWORD",
                               "PASSWORD RESET SUCCESSFULLY"])
        c = self.srv.client()
        try:
            c.login("bob", "bob")
        finally:
            c.close()

    def test_failures_exit_1(self):
        for args, reply in (
                (("-MAX_USERS", "0"), "-ERR INVALID MAX USERS"),
                (("-MAX_USERS", "abc"), "-ERR INVALID MAX USERS"),
                (("-MAX_CONNECTIONS", "0"), "-ERR INVALID MAX CONNECTIONS"),
                (("-MAX_CONNECTIONS", "100000000"),
                 "-ERR INVALID MAX CONNECTIONS"),
                (("-IDLE_TIMEOUT", "9"), "-ERR INVALID IDLE TIMEOUT"),
                (("-IDLE_TIMEOUT", "86401"), "-ERR INVALID IDLE TIMEOUT"),
                (("-TIMEOUT", "0"), "-ERR INVALID TIMEOUT"),
                (("-TIMEOUT", "3601"), "-ERR INVALID TIMEOUT"),
                (("-DELETE_USER", "admin"), "-ERR ADMIN CANNOT BE DELETED"),
                (("-DELETE_USER", "ghost"), "-ERR USER NOT FOUND"),
                (("-ADD_USER", "alice", "x1234"), "-ERR USER ALREADY EXISTS"),
                (("-ADD_USER", "../x", "x1234"), "-ERR INVALID USER NAME"),
                (("-RESET_USER_PASSWORD", "ghost"), "-ERR USER NOT FOUND"),
                (("-CHANGE_PASSWORD", "not-it", "new-pw-1"),
                 "-ERR WRONG PASSWORD"),
                (("-CHANGE_PASSWORD", ADMIN_PW, "p" * 129),
                 "-ERR INVALID PASSWORD")):
            with self.subTest(args=args):
                self.run_err(reply, *args)

    def test_output_not_written_exit_3(self):
        # A script must not take figures it never got for a success.
        status = [MONITOR_BIN, "--host", "127.0.0.1", "--port",
                  str(self.srv.mgmt_port), "1.0", "admin", ADMIN_PW,
                  "-STATUS"]
        for argv in (status, [MONITOR_BIN, "--help"],
                     [MONITOR_BIN, "1.0", "admin", "pw", "-HELP"]):
            with self.subTest(argv=argv[-1]):
                with open("/dev/full", "wb") as full:
                    p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                       stdout=full, stderr=subprocess.PIPE,
                                       timeout=30)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn(b"cannot write the output", p.stderr)

    def test_closed_output_pipe_exit_3(self):
        # admin_monitor -STATUS | head -0: a reader that went away is an
        # output not written (exit 3, said), not a death by SIGPIPE.
        argv = [MONITOR_BIN, "--host", "127.0.0.1", "--port",
                str(self.srv.mgmt_port), "1.0", "admin", ADMIN_PW, "-STATUS"]
        r, w = os.pipe()
        os.close(r)
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=w,
                               stderr=subprocess.PIPE, timeout=30)
        finally:
            os.close(w)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(b"cannot write the output", p.stderr)

    def test_help(self):
        r = run_monitor([MONITOR_BIN, "-HELP"])
        self.assertEqual(r.rc, 0, r)
        for flag in FLAGS:
            self.assertIn(flag, r.stdout)

    def test_password_from_stdin(self):
        r = self.srv.monitor("-NOOP", password="-",
                             stdin=(ADMIN_PW + "\n").encode())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines, HEAD + ["+OK NOOP"] + TAIL)
        self.assertNotIn(ADMIN_PW, " ".join(r.argv))

    def test_wrong_password_from_stdin(self):
        r = self.srv.monitor("-NOOP", password="-", stdin=b"not-the-pw\n")
        self.assertEqual(r.rc, 1, r)


class MonitorLogin(unittest.TestCase):
    def test_longest_password_logs_in(self):
        # 128 characters, the most a password may have, on the command
        # line and from standard input.
        pw = "p" * 128
        with MgmtServer(users={"admin": pw}) as srv:
            for how in ({}, {"password": "-",
                             "stdin": (pw + "\n").encode()}):
                with self.subTest(stdin="stdin" in how):
                    r = srv.monitor("-NOOP", **how)
                    self.assertEqual(r.rc, 0, r)
                    self.assertIn("+OK NOOP", r.lines)

    def test_wrong_password_exit_1(self):
        with MgmtServer() as srv:
            r = srv.monitor("-ADD_USER", "rita", "Rita-Pw-1",
                            password="wrong-pw")
            self.assertEqual(r.rc, 1, r)
            self.assertEqual(r.lines[:2], HEAD[:2], r)
            self.assertTrue(r.lines[2].startswith("-ERR"), r)
            self.assertNotIn("+OK ADD_USER", r.lines)
            self.assertGreaterEqual(r.elapsed, FAIL_DELAY_MIN)
            m = srv.mgmt()
            self.assertNotIn("rita", m.ok("USERS"))
            m.close()

    def test_wrong_password_with_a_short_timeout_exit_1(self):
        """The server answers a wrong password after its 1 s delay: a
        --timeout of 1 must still tell a refusal from no answer."""
        with MgmtServer() as srv:
            r = srv.monitor("-NOOP", password="wrong-pw",
                            options=["--timeout", "1"])
            self.assertEqual(r.rc, 1, r)
            self.assertTrue(r.lines[2].startswith("-ERR"), r)

    def test_wrong_old_password_with_a_short_timeout_exit_1(self):
        # CHANGE_PASSWORD's wrong old password has the same 1 s delay.
        with MgmtServer() as srv:
            r = srv.monitor("-CHANGE_PASSWORD", "not-it", "Mon-New-Pw-4",
                            options=["--timeout", "1"])
            self.assertEqual(r.rc, 1, r)
            self.assertEqual(r.lines[3:], ["-ERR WRONG PASSWORD"] + TAIL, r)

    def test_non_admin_exit_1(self):
        with MgmtServer() as srv:
            r = srv.monitor("-NOOP", user="alice", password="secret")
            self.assertEqual(r.rc, 1, r)
            self.assertEqual(r.lines[0], GREETING)
            self.assertTrue(r.lines[1].startswith("-ERR"), r)
            self.assertNotIn("+OK NOOP", r.lines)

    def test_add_user_at_the_max_exit_1(self):
        with MgmtServer() as srv:
            r = srv.monitor("-MAX_USERS", "3")
            self.assertEqual(r.rc, 0, r)
            r = srv.monitor("-ADD_USER", "sam", "Sam-Pw-1")
            self.assertEqual(r.rc, 1, r)
            self.assertEqual(r.lines, HEAD + ["-ERR MAX USERS REACHED"]
                             + TAIL, r)

    def test_change_password(self):
        with MgmtServer() as srv:
            r = srv.monitor("-CHANGE_PASSWORD", ADMIN_PW, "Mon-New-Pw-3")
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.lines, HEAD + ["+OK CHANGE_PASSWORD",
                                              "PASSWORD CHANGED SUCCESSFULLY"]
                             + TAIL, r)
            r = srv.monitor("-NOOP", password="Mon-New-Pw-3")
            self.assertEqual(r.rc, 0, r)


class MonitorUsage(unittest.TestCase):
    """Usage errors exit 2 before connecting: the port given has nothing
    listening, so a connection attempt would end in 3."""

    def setUp(self):
        self.port = free_port()

    def usage(self, *args, **kw):
        r = monitor(*args, port=self.port, **kw)
        self.assertEqual(r.rc, 2, r)
        self.assertTrue(r.stderr.strip(), "no message: %r" % r)
        return r

    def test_other_versions(self):
        for v in ("2.0", "1", "1.1", "1.0.0", "v1.0", "0.9"):
            with self.subTest(version=v):
                r = self.usage("-NOOP", version=v)
                self.assertIn("version", r.stderr.lower())

    def test_unknown_command_flag(self):
        for flag in ("-FOO", "-STAT", "STATUS", "--STATUS", "-MAX_CONNEC"):
            with self.subTest(flag=flag):
                self.usage(flag)

    def test_wrong_number_of_command_arguments(self):
        for args in (("-MAX_USERS",), ("-ADD_USER", "onlyname"),
                     ("-STATUS", "extra"), ("-CHANGE_PASSWORD", "old"),
                     ("-TIMEOUT",), ("-FILTER", "sed", "s/a/b/")):
            with self.subTest(args=args):
                self.usage(*args)

    def test_bad_option_named_for_what_it_is(self):
        # An unknown option is unknown even last on the line; a known
        # one without its value says so.
        for argv, says in ((["--version"], "unknown option: --version"),
                           (["--verbose", "x"], "unknown option: --verbose"),
                           (["--port"], "option needs a value: --port"),
                           (["--port", "0", "1.0", "admin", "x", "-NOOP"],
                            "invalid port: 0"),
                           (["--timeout", "0", "1.0", "admin", "x",
                             "-NOOP"], "invalid timeout: 0"),
                           (["-p", "6000", "1.0", "admin", "x", "-NOOP"],
                            "unknown option (options are --host, --port, "
                            "--timeout and --help): -p"),
                           (["-h"], "unknown option (options are --host, "
                            "--port, --timeout and --help): -h")):
            with self.subTest(argv=argv):
                r = run_monitor([MONITOR_BIN] + argv)
                self.assertEqual(r.rc, 2, r)
                self.assertIn(says, r.stderr)

    def test_option_after_version_named(self):
        # Options come before <version>: one after it would be read as
        # the user, the command, or a user named "--timeout".
        port = str(self.port)
        for argv in (["1.0", "--port", port, "admin", "pw", "-NOOP"],
                     ["1.0", "admin", "--port", port, "pw", "-NOOP"],
                     ["1.0", "admin", "pw", "-NOOP", "--port", port],
                     ["1.0", "admin", "pw", "-DELETE_USER", "x",
                      "--timeout", "5"]):
            with self.subTest(argv=argv):
                r = run_monitor([MONITOR_BIN] + argv)
                self.assertEqual(r.rc, 2, r)
                self.assertIn("options must come before <version>: --",
                              r.stderr)

    def test_argument_named_like_an_option_is_sent(self):
        # A command's argument may be such a word: a user named --host.
        with MgmtServer() as srv:
            r = srv.monitor("-ADD_USER", "--host", "Host-Pw-1")
            self.assertEqual(r.rc, 0, r)
            r = srv.monitor("-DELETE_USER", "--host")
            self.assertEqual(r.rc, 0, r)
            self.assertIn("USER DELETED SUCCESSFULLY", r.lines, r)

    def test_password_named_like_an_option_is_sent(self):
        # CHANGE_PASSWORD sets any printable word: the new password logs
        # in from the command line, not only through standard input.
        with MgmtServer() as srv:
            r = srv.monitor("-CHANGE_PASSWORD", ADMIN_PW, "--port")
            self.assertEqual(r.rc, 0, r)
            r = srv.monitor("-NOOP", password="--port")
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.lines[:3], HEAD, r)

    def test_help_option_wins_over_the_rest(self):
        # --help is read with the options, before anything else.
        for argv in (["--help", "extra"],
                     ["--port", str(self.port), "--help", "1.0", "admin",
                      "pw", "-NOOP"]):
            with self.subTest(argv=argv):
                r = run_monitor([MONITOR_BIN] + argv)
                self.assertEqual(r.rc, 0, r)
                self.assertIn("usage: admin_monitor", r.stdout)

    def test_help_with_arguments_is_a_usage_error(self):
        for argv in (["-HELP", "extra"], ["-help", "1.0"],
                     ["1.0", "admin", "pw", "-HELP", "extra"]):
            with self.subTest(argv=argv):
                r = run_monitor([MONITOR_BIN] + argv)
                self.assertEqual(r.rc, 2, r)
                self.assertEqual(r.stdout, "", r)

    def test_missing_arguments(self):
        # A command alone is a command, not an unknown option.
        for argv in (["--port", str(self.port), "1.0", "admin"],
                     ["-NOOP"], ["-status"]):
            with self.subTest(argv=argv):
                r = run_monitor([MONITOR_BIN] + argv)
                self.assertEqual(r.rc, 2, r)
                self.assertIn("admin_monitor: missing arguments", r.stderr)

    def test_line_too_long_for_the_server(self):
        # 255 octets with CRLF is the server's limit: refused before
        # connecting, never sent half (or after a login).  "FILTER " and
        # 247 octets is one over it.
        for args in (("-ADD_USER", "u" * 300, "pw"),
                     ("-FILTER", "cat #" + "x" * 242),
                     ("-FILTER", "x" * 5000)):
            with self.subTest(args=args[0]):
                self.usage(*args)

    def test_line_break_in_an_argument(self):
        # Sent as it is, it would end the line and start a command of
        # its own (here a DEL_USER after a harmless NOOP).
        for kw in ({"user": "admin\r\nDEL_USER bob"},
                   {"password": "pw\nDEL_USER bob"}):
            with self.subTest(**kw):
                self.assertIn("line break", self.usage("-NOOP", **kw).stderr)
        for args in (("-DELETE_USER", "bob\r\nDELETE_USER carol"),
                     ("-FILTER", "a\rb")):
            with self.subTest(args=args):
                self.usage(*args)

    def test_empty_or_spaced_argument(self):
        # The server would read "a b" as two arguments and "" as none.
        for args, kw in ((("-DELETE_USER", "alice bob"), {}),
                         (("-RESET_USER_PASSWORD", ""), {}),
                         (("-ADD_USER", "carol", "pw x"), {}),
                         (("-MAX_USERS", " 5"), {}),
                         (("-NOOP",), {"user": "ad min"}),
                         (("-NOOP",), {"user": ""}),
                         (("-NOOP",), {"password": "pass word"}),
                         (("-NOOP",), {"password": "-",
                                       "stdin": b"pass word\n"})):
            with self.subTest(args=args, **kw):
                self.assertIn("space", self.usage(*args, **kw).stderr)

    def test_password_out_of_range(self):
        self.usage("-NOOP", password="p" * 129)
        self.usage("-NOOP", password="-", stdin=b"p" * 300 + b"\n")
        self.usage("-NOOP", password="-", stdin=b"\n")

    def test_unknown_option(self):
        r = run_monitor([MONITOR_BIN, "--bogus", "x", "--port",
                         str(self.port), "1.0", "admin", "pw", "-NOOP"])
        self.assertEqual(r.rc, 2, r)


def against(peer, command="-NOOP", timeout="5"):
    """admin_monitor against a fake peer, which is closed after."""
    try:
        return monitor(command, port=peer.port, options=["--timeout", timeout],
                       limit=30)
    finally:
        peer.close()


class MonitorConnection(unittest.TestCase):
    def test_nothing_listening_exit_3(self):
        r = monitor("-NOOP", port=free_port(), options=["--timeout", "2"])
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(r.stderr.strip())
        self.assertLess(r.elapsed, 3.0)

    def test_silent_server_exit_3_within_timeout(self):
        r = against(SilentListener(), timeout="2")
        self.assertEqual(r.rc, 3, r)
        # --timeout S bounds the wait: S seconds, not up to S + 1
        self.assertGreaterEqual(r.elapsed, 1.9, r)
        self.assertLessEqual(r.elapsed, 2.8, r)

    def test_connection_closed_by_server_exit_3(self):
        r = against(ScriptedPeer((GREETING + "\r\n").encode(), []))
        self.assertEqual(r.rc, 3, r)
        self.assertLess(r.elapsed, 4.0)

    def test_server_killed_after_login_exit_3(self):
        """The server goes away while the client waits for the TIMEOUT
        reply: a broken connection is exit 3."""
        with MgmtServer() as srv:
            t = threading.Timer(0.5, srv.stop)
            t.start()
            try:
                r = srv.monitor("-TIMEOUT", "5", options=["--timeout", "2"])
            finally:
                t.join()
            self.assertEqual(r.rc, 3, r)
            self.assertEqual(r.lines[:3], HEAD, r)

    def test_a_reply_has_one_deadline(self):
        """A body that keeps coming without its '.' is no answer: the
        timeout bounds the whole reply, not each of its lines."""
        def drip(c):
            c.sendall(b"+OK STATUS\r\n")
            for i in range(40):
                time.sleep(0.5)
                c.sendall(b"UPTIME: %d\r\n" % i)

        r = against(ScriptedPeer(b"+OK Management server ready\r\n",
                                 [b"+OK USER\r\n", b"+OK PASS\r\n", drip]),
                    "-STATUS", timeout="2")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("no answer from the server in time", r.stderr, r)
        self.assertLess(r.elapsed, 3.5, r)

    def test_not_a_management_server_exit_3(self):
        # Another service's -ERR too (a full POP3 server on the port
        # given by mistake): only MGMT's own refusals exit 1.
        for greeting in ("HELLO THERE", "* OK IMAP4rev1 ready",
                         "-ERR [SYS/TEMP] too many connections", "-ERR"):
            with self.subTest(greeting=greeting):
                r = against(ScriptedPeer((greeting + "\r\n").encode(), []))
                self.assertEqual(r.rc, 3, r)
                self.assertEqual(r.lines, [greeting], r)
                self.assertIn("not a management server", r.stderr, r)

    def test_mgmt_refusal_greetings_exit_1(self):
        """MGMT's own refusals: over its 64 sessions, and busy (no
        descriptor or memory left)."""
        for greeting in ("-ERR TOO MANY MANAGEMENT SESSIONS",
                         "-ERR SERVER BUSY, TRY AGAIN LATER"):
            with self.subTest(greeting=greeting):
                r = against(ScriptedPeer((greeting + "\r\n").encode(), []))
                self.assertEqual(r.rc, 1, r)
                self.assertEqual(r.lines, [greeting], r)

    def test_pop3_port_by_mistake_exit_3(self):
        """A POP3 server greets with +OK too and admin is a POP3 user:
        without the greeting check, -NOOP would report a healthy MGMT
        it never reached, and send the password to POP3."""
        with MgmtServer() as srv:
            r = srv.monitor("-NOOP", port=srv.port)
            self.assertEqual(r.rc, 3, r)
            self.assertEqual(len(r.lines), 1, r)
            self.assertIn("not a management server", r.stderr, r)
            self.assertNotIn("user=admin", srv.log_text())

    def test_status_word_must_stand_alone(self):
        """+OKAY is no +OK: taking it for one would read the next reply
        as this one's body."""
        r = against(ScriptedPeer((GREETING + "\r\n").encode(),
                         [b"+OK USER\r\n", b"+OK PASS\r\n", b"+OKAY\r\n",
                          b"+OK bye\r\n"]))
        self.assertEqual(r.rc, 3, r)
        self.assertIn("not a management protocol reply", r.stderr, r)

    def test_long_and_nul_lines_printed_whole(self):
        long = b"+OK " + b"x" * 2000
        r = against(ScriptedPeer((GREETING + "\r\n").encode(),
                         [b"+OK USER\r\n", b"+OK PASS\r\n",
                          b"+OK NO\x00OP\r\n", long + b"\r\n"]))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.lines[3], "+OK NO\x00OP", r)
        self.assertEqual(r.lines[4], long.decode(), r)


if __name__ == "__main__":
    unittest.main()
