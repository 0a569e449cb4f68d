"""The MGMT FILTER command: FILTER shows the filter, FILTER <command>
sets it live (rest of the line, spaces kept, blanks at either end
dropped), FILTER - removes it; the setting is saved in the users file
("%filter <command>") and restored after a restart.  A command with a
control character (DEL included) is refused, by FILTER and by -t."""
import os
import shutil
import subprocess
import tempfile
import unittest

from pop3test import SERVER_BIN, free_port

from filterlib import (ALICE, OK_FILTERED, UPPER, FilterServer, FilterTest,
                       ascii_upper, expected_body, read_multiline_or_close,
                       stuff, wire_form)


def users_file_lines(srv):
    with open(srv.users_file, "rb") as f:
        return f.read().decode("latin-1").splitlines()


def filter_lines(srv):
    return [ln for ln in users_file_lines(srv) if ln.startswith("%filter")]


class FilterCommand(FilterTest):

    def retr(self, c, n):
        first = c.cmd("RETR %d" % n)
        body, complete = read_multiline_or_close(c) \
            if first.startswith("+OK") else (None, None)
        if body is not None:
            self.assertTrue(complete, "RETR %d: no '.' line" % n)
        return first, body

    def test_show_without_and_with_t(self):
        with FilterServer() as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter(), ["+OK FILTER", "FILTER: NONE", "."])
            m.close()
            self.assertEqual(filter_lines(srv), [])
            self.assert_clean(srv)
        with FilterServer(filter=UPPER) as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter(),
                             ["+OK FILTER", "FILTER: " + UPPER, "."])
            self.assertEqual(m.ask("NOOP").split()[0], "+OK")
            m.close()
            self.assert_clean(srv)

    def test_longest_t_shown_whole(self):
        # -t takes up to 400 octets: FILTER shows every one of them.
        longest = "cat" + " " * 391 + "; true"
        with FilterServer(filter=longest) as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter(),
                             ["+OK FILTER", "FILTER: " + longest, "."])
            m.close()
            self.assert_clean(srv)

    def test_set_live_and_remove(self):
        with FilterServer() as srv:
            m = srv.mgmt()
            c = srv.pop3("alice")
            raw = ALICE[0][1]
            first, body = self.retr(c, 1)
            self.assertNotEqual(first, OK_FILTERED)
            self.assertEqual(body, stuff(wire_form(raw)))
            # Set: the session already open gets the filter at its next
            # RETR.
            self.assertEqual(m.filter(UPPER),
                             ["+OK FILTER", "FILTER: " + UPPER, "."])
            self.assertEqual(m.filter(),
                             ["+OK FILTER", "FILTER: " + UPPER, "."])
            first, body = self.retr(c, 1)
            self.assertEqual(first, OK_FILTERED)
            self.assertEqual(body, expected_body(ascii_upper(raw)))
            self.assertEqual(filter_lines(srv), ["%filter " + UPPER])
            # Replace.
            m.set_filter("rev")
            first, body = self.retr(c, 1)
            self.assertEqual(first, OK_FILTERED)
            self.assertEqual(
                body, expected_body(b"".join(
                    ln.rstrip(b"\n")[::-1] + b"\n"
                    for ln in raw.splitlines(True))))
            self.assertEqual(filter_lines(srv), ["%filter rev"])
            # Remove.
            self.assertEqual(m.filter("-"),
                             ["+OK FILTER", "FILTER: NONE", "."])
            first, body = self.retr(c, 1)
            self.assertNotEqual(first, OK_FILTERED)
            self.assertTrue(first.startswith("+OK"), first)
            self.assertEqual(body, stuff(wire_form(raw)))
            self.assertEqual(filter_lines(srv), ["%filter -"])
            self.assertEqual(m.filter(), ["+OK FILTER", "FILTER: NONE", "."])
            c.quit()
            m.close()
            self.assert_clean(srv)

    def test_rest_of_line_spaces_kept(self):
        cmd = "echo 'two  spaces'   ;  echo   x"
        with FilterServer() as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter(cmd),
                             ["+OK FILTER", "FILTER: " + cmd, "."])
            self.assertEqual(filter_lines(srv), ["%filter " + cmd])
            c = srv.pop3("alice")
            first, body = self.retr(c, 1)
            self.assertEqual(first, OK_FILTERED)
            self.assertEqual(body, b"two  spaces\r\nx\r\n")
            c.quit()
            m.close()
            self.assert_clean(srv)

    def test_spaces_after_filter_are_a_separator(self):
        # "FILTER   " shows the filter and "FILTER  -" removes it: the
        # spaces after the command word separate, they are no argument.
        with FilterServer(filter=UPPER) as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter("  "),
                             ["+OK FILTER", "FILTER: " + UPPER, "."])
            self.assertEqual(filter_lines(srv), [])
            self.assertEqual(m.filter("   " + UPPER),
                             ["+OK FILTER", "FILTER: " + UPPER, "."])
            self.assertEqual(m.filter(" -"),
                             ["+OK FILTER", "FILTER: NONE", "."])
            self.assertEqual(filter_lines(srv), ["%filter -"])
            c = srv.pop3("alice")
            first, body = self.retr(c, 1)
            self.assertNotEqual(first, OK_FILTERED)
            self.assertEqual(body, stuff(wire_form(ALICE[0][1])))
            c.quit()
            m.close()
            self.assert_clean(srv)

    def test_blanks_after_the_command_are_no_part_of_it(self):
        # "FILTER - " typed by hand, or with a tab, must remove the
        # filter: kept, "- " or "-<TAB>" is a command the shell runs as an
        # option, which fails every RETR.  Blanks after a command are
        # dropped the same way.
        raw = ALICE[0][1]
        for removal in ("- ", "-\t", "- \t "):
            with self.subTest(removal=removal), \
                    FilterServer(filter=UPPER) as srv:
                m = srv.mgmt()
                self.assertEqual(m.filter(removal),
                                 ["+OK FILTER", "FILTER: NONE", "."])
                self.assertEqual(m.filter(),
                                 ["+OK FILTER", "FILTER: NONE", "."])
                self.assertEqual(filter_lines(srv), ["%filter -"])
                c = srv.pop3("alice")
                first, body = self.retr(c, 1)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertNotEqual(first, OK_FILTERED)
                self.assertEqual(body, stuff(wire_form(raw)))
                c.quit()
                m.close()
                self.assert_clean(srv)
        with FilterServer() as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter(" cat \t "),
                             ["+OK FILTER", "FILTER: cat", "."])
            self.assertEqual(m.filter(), ["+OK FILTER", "FILTER: cat", "."])
            self.assertEqual(filter_lines(srv), ["%filter cat"])
            c = srv.pop3("alice")
            first, body = self.retr(c, 1)
            self.assertEqual(first, OK_FILTERED)
            self.assertEqual(body, expected_body(raw))
            c.quit()
            m.close()
            self.assert_clean(srv)

    def test_del_refused(self):
        # DEL is a control character like the others: a terminal showing
        # FILTER's reply or the log would erase with it.
        with FilterServer(filter=UPPER) as srv:
            m = srv.mgmt()
            for bad in ("cat\x7f", "\x7fcat", "tr a \x7f"):
                with self.subTest(command=bad):
                    self.assertEqual(m.filter(bad), ["-ERR INVALID FILTER"])
                    self.assertEqual(m.filter(),
                                     ["+OK FILTER", "FILTER: " + UPPER, "."])
            self.assertEqual(filter_lines(srv), [])
            m.close()
            self.assert_clean(srv)

    def test_t_with_del_or_8bit_exits_2(self):
        # The same rule for -t: a bad command line, refused before
        # anything is bound or written; so is one of blanks only (tabs
        # too), which would turn every message into an empty one.  "\udc9b" is the byte 0x9b (a
        # terminal's CSI) on the command line.
        tmp = tempfile.mkdtemp(prefix="pop3test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.mkdir(os.path.join(tmp, "mail"))
        users = os.path.join(tmp, "users")
        for bad in ("cat\x7f", "\x7fcat", "cat \udc9b31m", "\t", " \t "):
            with self.subTest(command=bad):
                try:
                    p = subprocess.run(
                        [SERVER_BIN, "--allow-root", "-l", "127.0.0.1",
                         "-p", str(free_port()), "-L", "127.0.0.1",
                         "-P", str(free_port()),
                         "-d", os.path.join(tmp, "mail"),
                         "-U", users, "-t", bad],
                        stdin=subprocess.DEVNULL, capture_output=True,
                        timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail("-t %r accepted: still running after 10 s"
                              % bad)
                err = p.stderr.decode("latin-1")
                self.assertEqual(p.returncode, 2, err)
                self.assertIn("-t: the command must be one line", err)
                self.assertFalse(os.path.exists(users))

    def test_persisted_across_restart(self):
        cmd = UPPER + "  # persisted"
        with FilterServer() as srv:
            m = srv.mgmt()
            m.set_filter(cmd)
            m.close()
            self.assertEqual(filter_lines(srv), ["%filter " + cmd])
            srv.stop()
            srv.start()
            m = srv.mgmt()
            self.assertEqual(m.filter(),
                             ["+OK FILTER", "FILTER: " + cmd, "."])
            c = srv.pop3("alice")
            first, body = self.retr(c, 2)
            self.assertEqual(first, OK_FILTERED)
            self.assertEqual(body, expected_body(ascii_upper(ALICE[1][1])))
            c.quit()
            # Removed, restarted: no filter.
            self.assertEqual(m.filter("-"),
                             ["+OK FILTER", "FILTER: NONE", "."])
            m.close()
            self.assertEqual(filter_lines(srv), ["%filter -"])
            srv.stop()
            srv.start()
            m = srv.mgmt()
            self.assertEqual(m.filter(), ["+OK FILTER", "FILTER: NONE", "."])
            c = srv.pop3("alice")
            first, body = self.retr(c, 2)
            self.assertNotEqual(first, OK_FILTERED)
            self.assertEqual(body, stuff(wire_form(ALICE[1][1])))
            c.quit()
            m.close()
            self.assert_clean(srv)

    def test_removal_wins_over_t_at_restart(self):
        # Removing is a change like setting: saved, it beats -t.
        with FilterServer(filter=UPPER) as srv:
            m = srv.mgmt()
            self.assertEqual(m.filter("-"),
                             ["+OK FILTER", "FILTER: NONE", "."])
            m.close()
            srv.stop()
            srv.start()         # still -t UPPER on the command line
            m = srv.mgmt()
            self.assertEqual(m.filter(), ["+OK FILTER", "FILTER: NONE", "."])
            m.close()
            c = srv.pop3("alice")
            first, body = self.retr(c, 2)
            self.assertNotEqual(first, OK_FILTERED)
            self.assertEqual(body, stuff(wire_form(ALICE[1][1])))
            c.quit()
            self.assertTrue(srv.wait_log(r"RETR filter saved by MGMT "
                                         r"overrides -t"))
            self.assert_clean(srv)

    def test_accounts_survive_filter_changes(self):
        # Rewriting the users file for the setting keeps the accounts.
        with FilterServer() as srv:
            before = [ln for ln in users_file_lines(srv)
                      if not ln.startswith(("#", "%"))]
            m = srv.mgmt()
            m.set_filter("cat")
            m.filter("-")
            m.set_filter("cat -A")
            m.close()
            after = [ln for ln in users_file_lines(srv)
                     if not ln.startswith(("#", "%"))]
            self.assertEqual(after, before)
            srv.stop()
            srv.start()
            c = srv.pop3("bob")
            first, body = self.retr(c, 1)
            self.assertEqual(first, OK_FILTERED)
            c.quit()
            self.assert_clean(srv)


if __name__ == "__main__":
    unittest.main()
