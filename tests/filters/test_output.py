"""What a filtered RETR sends: the filter's output byte-exact after CRLF
conversion and byte-stuffing, the +OK wording, the environment of the
filter, its stderr in the server log with the session's id, TOP not
filtered, LIST/STAT with the file's size."""
import socket
import unittest

from filterlib import (ALICE, BOB, OK_FILTERED, UPPER, FilterServer,
                       FilterTest, ascii_upper, expected_body,
                       read_multiline_or_close, stuff, top_form,
                       wire_form)


class Output(FilterTest):
    """One server; each test sets the filter it needs over MGMT (the
    setting is read when a RETR starts)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = FilterServer(filter=UPPER).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def setUp(self):
        self.m = self.srv.mgmt()
        self.m.set_filter(UPPER)
        self.c = self.srv.pop3("alice")

    def tearDown(self):
        try:
            self.c.close()
            self.m.close()
            self.assert_clean(self.srv)
        finally:
            super().tearDown()

    def retr(self, n):
        """RETR n: (first line, body) with the body read to its '.'."""
        first = self.c.cmd("RETR %d" % n)
        self.assertEqual(first, OK_FILTERED, "RETR %d" % n)
        body, complete = read_multiline_or_close(self.c)
        self.assertTrue(complete, "RETR %d: closed before the '.' line" % n)
        return body

    def test_uppercase_every_message_byte_exact(self):
        # CRLF-stored, lone dots, no final newline, empty body, 8-bit:
        # the client gets tr's output, converted and stuffed afterwards.
        for i, (uid, raw, _) in enumerate(ALICE, 1):
            with self.subTest(msg=i, uid=uid):
                self.assertEqual(self.retr(i),
                                 expected_body(ascii_upper(raw)))
        self.assertTrue(self.c.cmd("NOOP").startswith("+OK"))
        self.c.quit()

    def test_same_message_twice(self):
        raw = ALICE[1][1]
        self.assertEqual(self.retr(2), expected_body(ascii_upper(raw)))
        self.assertEqual(self.retr(2), expected_body(ascii_upper(raw)))
        self.c.quit()

    def test_crlf_conversion_after_the_filter(self):
        # LF output becomes CRLF; CRLF output stays CRLF (no CR CR LF);
        # output without a final line end gets one.
        self.m.set_filter(r"sed 's/$/\r/'")
        raw = ALICE[0][1]
        body = self.retr(1)
        self.assertEqual(body, expected_body(raw))
        self.assertNotIn(b"\r\r", body)
        self.m.set_filter("printf 'no final line end'")
        self.assertEqual(self.retr(1), b"no final line end\r\n")
        self.m.set_filter(r"printf 'a\nb\r\nc\n'")
        self.assertEqual(self.retr(1), b"a\r\nb\r\nc\r\n")
        self.c.quit()

    def test_byte_stuffing_after_the_filter(self):
        # Every output line gets a leading dot: all of them are stuffed,
        # the empty ones and a lone '.' included.
        self.m.set_filter("sed 's/^/./'")
        raw = ALICE[1][1]
        out = b"".join(b"." + ln for ln in raw.splitlines(True))
        body = self.retr(2)
        self.assertEqual(body, expected_body(out))
        self.assertTrue(all(ln.startswith(b"..")
                            for ln in body.split(b"\r\n")[:-1]))
        # A filter whose output is a lone dot.
        self.m.set_filter("echo .")
        self.assertEqual(self.retr(1), b"..\r\n")
        self.c.quit()

    def test_exit_0_without_output_is_an_empty_message(self):
        self.m.set_filter("cat >/dev/null")
        self.assertEqual(self.c.cmd("RETR 1"), OK_FILTERED)
        body, complete = read_multiline_or_close(self.c)
        self.assertTrue(complete)
        # An empty message is one empty line (as for an empty file).
        self.assertEqual(body, b"\r\n")
        self.assertTrue(self.c.cmd("NOOP").startswith("+OK"))
        self.c.quit()

    def test_output_larger_than_input(self):
        # Every line twice (sed p): about double the file, still exact.
        self.m.set_filter("sed p")
        raw = ALICE[0][1]
        out = b"".join(ln + ln for ln in raw.splitlines(True))
        self.assertEqual(self.retr(1), expected_body(out))
        self.c.quit()

    def test_environment(self):
        self.m.set_filter(
            "printf 'U=%s\\nS=%s\\nN=%s\\nI=%s\\n' \"$POP3_USERNAME\" "
            "\"$POP3_SERVER\" \"$POP3_MSGNUM\" \"$POP3_UIDL\"")
        uidl = {}
        for ln in self.c.multi_lines("UIDL"):
            n, uid = ln.split(" ", 1)
            uidl[int(n)] = uid
        for n in (1, 3, len(ALICE)):
            with self.subTest(msg=n):
                lines = self.retr(n).decode("latin-1").split("\r\n")[:-1]
                env = dict(ln.split("=", 1) for ln in lines)
                self.assertEqual(env["U"], "alice")
                self.assertEqual(env["N"], str(n))
                self.assertEqual(env["I"], uidl[n])
                host = socket.gethostname()
                self.assertIn(env["S"], (host, host.split(".")[0]),
                              "POP3_SERVER is not the server's name")
        self.c.quit()
        b = self.srv.pop3("bob")
        try:
            self.assertEqual(b.cmd("RETR 2"), OK_FILTERED)
            body, complete = read_multiline_or_close(b)
            self.assertTrue(complete)
            env = dict(ln.split("=", 1) for ln in
                       body.decode("latin-1").split("\r\n")[:-1])
            self.assertEqual((env["U"], env["N"]), ("bob", "2"))
            self.assertEqual(env["I"], BOB[1][0])
        finally:
            b.close()

    def test_stderr_goes_to_the_log_with_the_session_id(self):
        self.m.set_filter("echo \"warn-$POP3_MSGNUM-one\" >&2; cat; "
                          "echo \"warn-$POP3_MSGNUM-two\" >&2")
        sid = self.srv.session_id(self.c)
        raw = ALICE[2][1]
        body = self.retr(3)
        self.assertEqual(body, expected_body(raw))
        self.assertNotIn(b"warn-", body)
        for tag in ("one", "two"):
            m = self.srv.wait_log(r"pop3\[(\d+)\] filter: warn-3-%s$" % tag)
            self.assertTrue(m, "no filter stderr line %r in the log:\n%s"
                            % (tag, self.srv.log_text()[-3000:]))
            self.assertEqual(int(m.group(1)), sid,
                             "stderr logged under another session's id")
        self.c.quit()

    def test_stderr_logged_printable(self):
        # What a filter writes on stderr goes to the log, read by people
        # on terminals: an escape sequence or a CR would act there (or
        # hide the start of the line), so each control byte is a '?'.
        self.m.set_filter("printf 'a\\033[31mb\\rc\\n' >&2; cat")
        sid = self.srv.session_id(self.c)
        self.assertEqual(self.retr(1), expected_body(ALICE[0][1]))
        self.c.quit()
        said = [ln.split(" filter: ", 1)[1] for ln in self.session_log(sid)
                if " filter: " in ln]
        self.assertEqual(said, ["a?[31mb?c"])
        with open(self.srv.log_file, "rb") as f:
            raw = f.read()
        self.assertNotIn(b"\x1b", raw)
        self.assertNotIn(b"\r", raw)

    def filter_said(self, command):
        """What the log shows of command's stderr, for one RETR."""
        self.m.set_filter(command)
        sid = self.srv.session_id(self.c)
        self.assertEqual(self.retr(1), expected_body(ALICE[0][1]))
        self.c.quit()
        return [ln.split(" filter: ", 1)[1] for ln in self.session_log(sid)
                if " filter: " in ln]

    def test_stderr_del_logged_as_question_mark(self):
        self.assertEqual(self.filter_said("printf 'a\\177b\\n' >&2; cat"),
                         ["a?b"])

    def test_stderr_line_cut_at_200(self):
        said = self.filter_said("printf '%0300d\\n' 0 >&2; cat")
        self.assertEqual(said, ["0" * 200])

    def session_log(self, sid):
        """The log lines of session sid, once it has logged its end (the
        client must have quit): nothing of it is logged after that."""
        m = self.srv.wait_log(r"pop3\[%d\] \S+ user=\S+ logout" % sid)
        self.assertTrue(m, "session %d never logged its end" % sid)
        tag = "pop3[%d] " % sid
        return [ln for ln in self.srv.log_text().splitlines() if tag in ln]

    def test_much_stderr_does_not_block_the_filter(self):
        # 20000 stderr lines (far over a pipe's capacity) before the
        # output: the server must drain stderr as it goes, log its first
        # 100 lines and count the rest, each time.
        self.m.set_filter("awk 'BEGIN { for (i = 0; i < 20000; i++) "
                          "print \"noise line \" i > \"/dev/stderr\" }'; "
                          + UPPER)
        sid = self.srv.session_id(self.c)
        rounds = 20
        for _ in range(rounds):
            self.assertEqual(self.retr(1),
                             expected_body(ascii_upper(ALICE[0][1])))
        self.c.quit()
        got = [ln.split(" filter: ", 1)[1] for ln in self.session_log(sid)
               if " filter: " in ln]
        want = (["noise line %d" % i for i in range(100)] +
                ["19900 more lines on standard error not logged"]) * rounds
        if got != want:
            per = [got.count(want[100]), got.count("noise line 0")]
            self.fail("%d of %d stderr lines logged (%d RETRs, the count "
                      "of the rest logged %d times, first line %d times)"
                      % (len(got), len(want), rounds, per[0], per[1]))

    def test_stderr_last_line_without_newline_is_logged(self):
        # A final stderr line without its newline, written just before
        # the filter exits: logged every time (many RETRs, since losing
        # it depends on timing).
        self.m.set_filter("cat; printf 'last words of %s' \"$POP3_MSGNUM\" >&2")
        sid = self.srv.session_id(self.c)
        rounds = 100
        for i in range(rounds):
            n = i % 3 + 1
            self.assertEqual(self.retr(n), expected_body(ALICE[n - 1][1]))
        self.c.quit()
        got = [ln.split(" filter: ", 1)[1] for ln in self.session_log(sid)
               if " filter: " in ln]
        want = ["last words of %d" % (i % 3 + 1) for i in range(rounds)]
        self.assertEqual(len(got), len(want),
                         "%d of %d final stderr lines logged"
                         % (len(got), len(want)))
        self.assertEqual(got, want)

    def test_filter_runs_with_sigpipe_at_its_default(self):
        # The server ignores SIGPIPE; its filters must not inherit that.
        # `yes | head -c 100`: at the default, yes dies quietly when head
        # is done; ignored, it gets EPIPE and complains on stderr (into
        # the log) about every message, and a filter that loops on
        # writes never ends.
        self.m.set_filter("yes | head -c 100")
        sid = self.srv.session_id(self.c)
        for n in (1, 2):
            self.assertEqual(self.retr(n), expected_body(b"y\n" * 50))
        self.c.quit()
        said = [ln for ln in self.session_log(sid) if " filter" in ln]
        self.assertEqual(said, [])

    def test_pipelined_retrs(self):
        self.c.send("RETR 1\r\nRETR 99\r\nRETR 2\r\nNOOP\r\n")
        self.assertEqual(self.c.line().decode(), OK_FILTERED)
        body, complete = read_multiline_or_close(self.c)
        self.assertTrue(complete)
        self.assertEqual(body, expected_body(ascii_upper(ALICE[0][1])))
        self.assertTrue(self.c.line().startswith(b"-ERR"))
        self.assertEqual(self.c.line().decode(), OK_FILTERED)
        body, complete = read_multiline_or_close(self.c)
        self.assertTrue(complete)
        self.assertEqual(body, expected_body(ascii_upper(ALICE[1][1])))
        self.assertTrue(self.c.line().startswith(b"+OK"))
        self.c.quit()

    def test_deleted_or_missing_message_starts_no_filter(self):
        self.m.set_filter("exec sleep 30")
        self.assertTrue(self.c.cmd("DELE 1").startswith("+OK"))
        self.assertTrue(self.c.cmd("RETR 1").startswith("-ERR"))
        self.assertTrue(self.c.cmd("RETR 99").startswith("-ERR"))
        self.assertEqual(self.srv.children(), {})
        self.assertTrue(self.c.cmd("RSET").startswith("+OK"))
        self.c.quit()

    def test_top_is_not_filtered(self):
        for n in (1, 2):
            raw = ALICE[n - 1][1]
            first, body = self.c.multi("TOP %d 2" % n)
            self.assertTrue(first.startswith("+OK"), first)
            self.assertNotEqual(first, OK_FILTERED)
            self.assertEqual(body, stuff(top_form(wire_form(raw), 2)))
        self.assertEqual(self.srv.children(), {}, "TOP started a filter")
        self.c.quit()

    def test_list_and_stat_report_the_file_size(self):
        # A filter that doubles every message must not change LIST/STAT.
        self.assertEqual(self.m.filter("-"),
                         ["+OK FILTER", "FILTER: NONE", "."])
        c2 = self.c
        plain_list = c2.multi_lines("LIST")
        plain_stat = c2.cmd("STAT")
        plain_one = c2.cmd("LIST 1")
        self.m.set_filter("sed p")
        self.assertEqual(c2.multi_lines("LIST"), plain_list)
        self.assertEqual(c2.cmd("STAT"), plain_stat)
        self.assertEqual(c2.cmd("LIST 1"), plain_one)
        size1 = int(plain_one.split()[2])
        body = self.retr(1)
        self.assertGreater(len(body), size1 + 100)    # it is filtered
        c2.quit()
        # A new session sees the same sizes under the filter.
        c3 = self.srv.pop3("alice")
        try:
            self.assertEqual(c3.multi_lines("LIST"), plain_list)
            self.assertEqual(c3.cmd("STAT"), plain_stat)
        finally:
            c3.close()


if __name__ == "__main__":
    unittest.main()
