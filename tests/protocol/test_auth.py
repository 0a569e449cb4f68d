"""AUTHORIZATION state: greeting, USER/PASS, AUTH PLAIN (RFC 5034), CAPA
(RFC 2449), response codes (RFC 3206), failure delay and limit, maildrop
locking, user-name checks."""
import base64
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from pop3test import (Server, SharedServerTest, fixture_messages,  # noqa: E402
                      unstuff)

USERS = {"alice": "secret", "bob": "hunter2"}
BUSY_WORDS = ("lock", "wait", "in-use")


def b64(data):
    return base64.b64encode(data).decode()


def parse_capa(lines):
    """CAPA body lines -> dict TAG -> list of upper-case arguments."""
    caps = {}
    for line in lines:
        parts = line.split()
        if parts:
            caps[parts[0].upper()] = [p.upper() for p in parts[1:]]
    return caps


class GreetingAndUserPass(SharedServerTest):
    SERVER_KW = dict(users=USERS)

    def setUp(self):
        self.c = self.srv.client()

    def tearDown(self):
        self.c.close()

    def test_greeting_starts_with_ok(self):
        g = self.c.line()
        self.assertTrue(g.startswith(b"+OK"), g)
        self.assertTrue(g.endswith(b"\r\n"), g)

    def test_user_pass_ok(self):
        self.c.greeting()
        self.assertTrue(self.c.cmd("USER alice").startswith("+OK"))
        r = self.c.cmd("PASS secret")
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(self.c.cmd("NOOP").startswith("+OK"))
        self.assertTrue(self.c.quit().startswith("+OK"))

    def test_pass_without_user_is_refused_and_session_goes_on(self):
        self.c.greeting()
        r = self.c.cmd("PASS secret")
        # Out of order, not bad credentials: no [AUTH] (RFC 3206).
        self.assertEqual(r, "-ERR USER first\r\n")
        self.assertTrue(self.c.cmd("STAT").startswith("-ERR"),
                        "PASS without USER must not log in")
        self.assertTrue(self.c.cmd("USER alice").startswith("+OK"))
        r = self.c.cmd("PASS secret")
        self.assertTrue(r.startswith("+OK"), r)
        self.c.quit()

    def test_quit_in_authorization_closes_and_deletes_nothing(self):
        before = sorted(os.listdir(os.path.join(self.srv.user_dir("alice"),
                                                "cur")))
        self.c.greeting()
        self.assertTrue(self.c.cmd("USER alice").startswith("+OK"))
        r = self.c.cmd("QUIT")
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(self.c.closed(5), "QUIT must close the connection")
        after = sorted(os.listdir(os.path.join(self.srv.user_dir("alice"),
                                               "cur")))
        self.assertEqual(before, after)

    def test_transaction_commands_in_authorization_refused(self):
        self.c.greeting()
        for cmd in ("STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "RSET",
                    "NOOP", "TOP 1 0", "UIDL", "UIDL 1"):
            r = self.c.cmd(cmd)
            self.assertTrue(r.startswith("-ERR"), "%s -> %r" % (cmd, r))
        # the session goes on, and the DELE above did nothing
        self.assertTrue(self.c.cmd("USER alice").startswith("+OK"))
        self.assertTrue(self.c.cmd("PASS secret").startswith("+OK"))
        r = self.c.cmd("STAT")
        n = len(fixture_messages("alice"))
        self.assertTrue(r.startswith("+OK %d " % n), r)
        self.c.quit()

    def test_capa_in_authorization(self):
        self.c.greeting()
        self.check_capa(self.c.multi_lines("CAPA"))

    def test_capa_in_transaction(self):
        self.c.login()
        self.check_capa(self.c.multi_lines("CAPA"))
        self.c.quit()

    def check_capa(self, lines):
        caps = parse_capa(lines)
        for tag in ("USER", "TOP", "UIDL", "PIPELINING", "RESP-CODES",
                    "AUTH-RESP-CODE"):
            self.assertIn(tag, caps, lines)
        self.assertIn("SASL", caps, lines)
        self.assertIn("PLAIN", caps["SASL"], lines)
        self.assertIn("EXPIRE", caps, lines)
        self.assertEqual(caps["EXPIRE"][:1], ["NEVER"], lines)
        self.assertIn("IMPLEMENTATION", caps, lines)
        self.assertTrue(caps["IMPLEMENTATION"], "IMPLEMENTATION needs a value")

    def test_auth_without_argument_lists_plain(self):
        self.c.greeting()
        lines = self.c.multi_lines("AUTH")
        self.assertIn("PLAIN", [l.strip().upper() for l in lines])


class Failures(SharedServerTest):
    """Bad credentials: same answer, delay, limit."""

    SERVER_KW = dict(users=USERS)

    def attempt(self, user, password, out, key):
        c = self.srv.client()
        try:
            c.greeting()
            out[key + "_user"] = c.cmd("USER " + user)
            t0 = time.monotonic()
            out[key] = c.cmd("PASS " + password)
            out[key + "_time"] = time.monotonic() - t0
            out[key + "_after"] = c.cmd("CAPA")
        finally:
            c.close()

    def test_wrong_password_and_unknown_user_same_answer(self):
        out = {}
        ts = [threading.Thread(target=self.attempt,
                               args=("alice", "wrong", out, "wrong")),
              threading.Thread(target=self.attempt,
                               args=("nosuchuser", "secret", out, "unknown"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertTrue(out["wrong_user"].startswith("+OK"), out)
        self.assertTrue(out["unknown_user"].startswith("+OK"),
                        "USER must not tell which names exist: %r" % out)
        self.assertTrue(out["wrong"].startswith("-ERR [AUTH]"), out)
        self.assertEqual(out["wrong"], out["unknown"])
        for word in BUSY_WORDS:
            self.assertNotIn(word, out["wrong"].lower())

    def test_failed_pass_is_delayed_and_session_goes_on(self):
        c = self.srv.client()
        c.greeting()
        self.assertTrue(c.cmd("USER alice").startswith("+OK"))
        t0 = time.monotonic()
        r = c.cmd("PASS wrong")
        dt = time.monotonic() - t0
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertGreaterEqual(dt, 0.8, "failed PASS answered too soon")
        self.assertLess(dt, 5.0)
        self.assertTrue(c.cmd("USER alice").startswith("+OK"))
        r = c.cmd("PASS secret")
        self.assertTrue(r.startswith("+OK"), r)
        c.quit()

    def test_empty_pass_is_a_failed_login(self):
        c = self.srv.client()
        c.greeting()
        self.assertTrue(c.cmd("USER alice").startswith("+OK"))
        t0 = time.monotonic()
        r = c.cmd("PASS")
        dt = time.monotonic() - t0
        self.assertTrue(r.startswith("-ERR [AUTH]"), r)
        self.assertGreaterEqual(dt, 0.8, "empty PASS answered at once")
        # A failed PASS forgets the user, as any failed login does.
        self.assertEqual(c.cmd("PASS secret"), "-ERR USER first\r\n")
        self.assertTrue(c.cmd("USER alice").startswith("+OK"))
        self.assertTrue(c.cmd("PASS secret").startswith("+OK"))
        c.quit()

    def test_failure_delay_does_not_block_other_clients(self):
        a = self.srv.client()
        b = self.srv.client()
        a.greeting()
        b.greeting()
        a.cmd("USER alice")
        a.send("PASS wrong\r\n")
        # while a's answer is being delayed, b is served at once
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            r = b.cmd("CAPA")
            self.assertTrue(r.startswith("+OK"), r)
            b.multiline()
            times.append(time.monotonic() - t0)
        self.assertLess(max(times), 0.5, times)
        r = a.line().decode()
        self.assertTrue(r.startswith("-ERR"), r)
        a.close()
        b.close()

    def test_three_failures_close_connection(self):
        c = self.srv.client()
        c.greeting()
        for i in range(2):
            c.cmd("USER alice")
            r = c.cmd("PASS wrong%d" % i)
            self.assertTrue(r.startswith("-ERR"), r)
        c.cmd("USER alice")
        c.send("PASS wrong3\r\n")
        try:
            r = c.line().decode()
            self.assertTrue(r.startswith("-ERR"), r)
        except (EOFError, ConnectionResetError):
            pass
        self.assertTrue(c.closed(5), "3rd failure must close the connection")
        c.close()

    def test_auth_plain_wrong_password_gets_auth_code(self):
        c = self.srv.client()
        c.greeting()
        r = c.cmd("AUTH PLAIN " + b64(b"\0alice\0wrong"))
        self.assertTrue(r.startswith("-ERR [AUTH]"), r)
        for word in BUSY_WORDS:
            self.assertNotIn(word, r.lower())
        c.close()


class AuthPlain(SharedServerTest):
    SERVER_KW = dict(users=USERS)

    def setUp(self):
        self.c = self.srv.client()
        self.c.greeting()

    def tearDown(self):
        self.c.close()

    def logged_in(self):
        r = self.c.cmd("STAT")
        return r.startswith("+OK")

    def test_initial_response(self):
        r = self.c.cmd("AUTH PLAIN " + b64(b"\0alice\0secret"))
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(self.logged_in())
        self.c.quit()

    def test_mechanism_name_case_insensitive(self):
        r = self.c.cmd("AUTH plain " + b64(b"\0alice\0secret"))
        self.assertTrue(r.startswith("+OK"), r)
        self.c.quit()

    def test_authzid_equal_to_user_accepted(self):
        r = self.c.cmd("AUTH PLAIN " + b64(b"alice\0alice\0secret"))
        self.assertTrue(r.startswith("+OK"), r)
        self.c.quit()

    def test_continuation(self):
        r = self.c.cmd("AUTH PLAIN")
        self.assertTrue(r.startswith("+ ") or r == "+\r\n", r)
        self.assertFalse(r.startswith("+OK"), r)
        r = self.c.cmd(b64(b"\0alice\0secret"))
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(self.logged_in())
        self.c.quit()

    def test_cancel_with_star(self):
        r = self.c.cmd("AUTH PLAIN")
        self.assertTrue(r.startswith("+"), r)
        r = self.c.cmd("*")
        self.assertEqual(r, "-ERR authentication cancelled\r\n")
        self.assertFalse(self.logged_in())
        r = self.c.cmd("AUTH PLAIN " + b64(b"\0alice\0secret"))
        self.assertTrue(r.startswith("+OK"), r)
        self.c.quit()

    def test_authzid_different_from_user_refused(self):
        r = self.c.cmd("AUTH PLAIN " + b64(b"bob\0alice\0secret"))
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertFalse(self.logged_in())

    def test_bad_base64_refused_and_session_goes_on(self):
        r = self.c.cmd("AUTH PLAIN !!!not*base64???")
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertFalse(self.logged_in())
        self.assertTrue(self.c.cmd("USER alice").startswith("+OK"))
        self.assertTrue(self.c.cmd("PASS secret").startswith("+OK"))
        self.c.quit()

    def test_missing_separators_refused(self):
        r = self.c.cmd("AUTH PLAIN " + b64(b"alicesecret"))
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertFalse(self.logged_in())

    def test_unreadable_credentials_are_a_failed_login(self):
        """A PLAIN response without its NULs is a failed login like any
        other: the [AUTH] answer after the delay, and the third one
        closes the session (so it cannot be used to guess for free)."""
        for i, bad in enumerate((b"alicesecret", b"alice\0secret",
                                 b"\0alice\0secret\0")):
            t0 = time.monotonic()
            if i == 2:
                self.c.send("AUTH PLAIN %s\r\n" % b64(bad))
                r = self.c.line().decode()
            else:
                r = self.c.cmd("AUTH PLAIN " + b64(bad))
            self.assertTrue(r.startswith("-ERR [AUTH]"), r)
            self.assertGreaterEqual(time.monotonic() - t0, 0.8,
                                    "answered without the failure delay")
        self.assertTrue(self.c.closed(5), "3rd failure must close")

    def test_empty_initial_response_is_a_failed_login(self):
        """'=' is an empty initial response (RFC 5034), not bad base64:
        empty credentials, so a failed login, delayed and counted."""
        for i in range(3):
            t0 = time.monotonic()
            if i == 2:
                self.c.send("AUTH PLAIN =\r\n")
                r = self.c.line().decode()
            else:
                r = self.c.cmd("AUTH PLAIN =")
            self.assertTrue(r.startswith("-ERR [AUTH]"), r)
            self.assertGreaterEqual(time.monotonic() - t0, 0.8,
                                    "answered without the failure delay")
        self.assertTrue(self.c.closed(5), "3rd failure must close")

    def test_unknown_mechanism_refused(self):
        r = self.c.cmd("AUTH CRAM-MD5")
        self.assertTrue(r.startswith("-ERR"), r)
        self.assertTrue(self.c.cmd("USER alice").startswith("+OK"))
        self.assertTrue(self.c.cmd("PASS secret").startswith("+OK"))
        self.c.quit()


class LongCredentials(SharedServerTest):
    """RFC 5034 section 4: the response after "+ " is not bound by the
    255-octet command limit, so the longest valid name (64) and password
    (128) can log in with AUTH PLAIN."""
    NAME = "n" * 64
    PASSWORD = "p" * 128
    SERVER_KW = dict(users={NAME: PASSWORD}, mail=None)

    def setUp(self):
        self.c = self.srv.client()
        self.c.greeting()
        self.addCleanup(self.c.close)

    def continuation(self, response):
        r = self.c.cmd("AUTH PLAIN")
        self.assertTrue(r.startswith("+ "), r)
        return self.c.cmd(response)

    def test_longest_credentials_with_authzid(self):
        cred = b64(("%s\0%s\0%s" % (self.NAME, self.NAME,
                                    self.PASSWORD)).encode())
        self.assertEqual(len(cred), 344)
        r = self.continuation(cred)
        self.assertTrue(r.startswith("+OK"), r)
        self.assertTrue(self.c.cmd("STAT").startswith("+OK"))
        self.c.quit()

    def test_overlong_response_ends_the_exchange_and_limit_returns(self):
        # RFC 5034 section 4: no line-length refusal for a response; it
        # is a failed login (delayed, [AUTH]), as in Dovecot.
        t0 = time.monotonic()
        r = self.continuation("QUFB" * 150)
        self.assertEqual(r, "-ERR [AUTH] invalid user name or password\r\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        # back to commands, with the 255-octet limit again
        r = self.c.cmd("NOOP " + "x" * 300)
        self.assertEqual(r, "-ERR line too long\r\n")
        self.assertTrue(self.c.cmd("USER " + self.NAME).startswith("+OK"))
        r = self.c.cmd("PASS " + self.PASSWORD)
        self.assertTrue(r.startswith("+OK"), r)
        self.c.quit()


class Locking(unittest.TestCase):
    def test_second_login_in_use_then_free_after_quit(self):
        with Server(users=USERS) as srv:
            first = srv.client()
            first.login()
            second = srv.client()
            second.greeting()
            self.assertTrue(second.cmd("USER alice").startswith("+OK"))
            r = second.cmd("PASS secret")
            self.assertTrue(r.startswith("-ERR [IN-USE]"), r)
            # The refused login forgot the name: a PASS alone is no login.
            self.assertEqual(second.cmd("PASS secret"), "-ERR USER first\r\n")
            second.close()
            # AUTH PLAIN is locked out the same way
            third = srv.client()
            third.greeting()
            r = third.cmd("AUTH PLAIN " + b64(b"\0alice\0secret"))
            self.assertTrue(r.startswith("-ERR [IN-USE]"), r)
            third.close()
            # the first session is untouched
            self.assertTrue(first.cmd("STAT").startswith("+OK"))
            # another user is not locked
            b = srv.client()
            b.login("bob", "hunter2")
            b.quit()
            first.quit()
            again = srv.client()
            r = again.login()
            self.assertTrue(r.startswith("+OK"), r)
            again.quit()

    def test_lock_released_after_disconnect(self):
        with Server(users=USERS) as srv:
            first = srv.client()
            first.login()
            first.close()
            deadline = time.monotonic() + 5
            while True:
                c = srv.client()
                c.greeting()
                c.cmd("USER alice")
                r = c.cmd("PASS secret")
                if r.startswith("+OK") or time.monotonic() > deadline:
                    break
                c.close()
                time.sleep(0.05)
            self.assertTrue(r.startswith("+OK"), r)
            c.quit()


class UserNames(unittest.TestCase):
    BAD = ["../bob", "a/b", ".hidden", "x" * 65, "..", ".", "/etc",
           "bob/../alice", "alice/", "../outside", "u" * 64 + "u",
           "al\\ice", "alice%2f..", "~alice", "alice*"]

    def try_login(self, srv, name, password, out):
        try:
            c = srv.client()
            c.greeting()
            ru = c.cmd("USER " + name)
            rp = c.cmd("PASS " + password)
            out[name] = (ru, rp)
            c.close()
        except Exception as e:  # recorded, asserted in the main thread
            out[name] = ("exception", repr(e))

    def test_bad_names_refused_and_never_crash(self):
        long_ok = "u" * 64
        users = {"alice": "secret", "bob": "secret", long_ok: "secret"}
        with Server(users=users) as srv:
            entries = set(os.listdir(srv.tmp))
            root_entries = set(os.listdir(srv.maildir))
            out = {}
            threads = [threading.Thread(target=self.try_login,
                                        args=(srv, n, "secret", out))
                       for n in self.BAD]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for name in self.BAD:
                ru, rp = out[name]
                self.assertTrue(rp.startswith("-ERR"),
                                "login as %r: %r %r" % (name, ru, rp))
            self.assertIsNone(srv.proc.poll(), "server died")
            self.assertEqual(entries, set(os.listdir(srv.tmp)))
            self.assertEqual(root_entries, set(os.listdir(srv.maildir)))
            # the 64-character name is valid
            c = srv.client()
            r = c.login(long_ok, "secret")
            self.assertTrue(r.startswith("+OK"), r)
            c.quit()
            c = srv.client()
            c.login()
            c.quit()

    def test_planted_maildir_outside_root_never_served(self):
        with Server(users={"alice": "secret"}) as srv:
            marker = b"OUTSIDE-THE-MAIL-ROOT-4711"
            outside = os.path.join(srv.tmp, "outside")
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(outside, sub))
            msg = b"From: x@example.org\nSubject: " + marker + b"\n\n" + \
                marker + b"\n"
            with open(os.path.join(outside, "cur", "1600000000.M1.x:2,"),
                      "wb") as f:
                f.write(msg)
            with open(os.path.join(outside, "new", "1600000001.M2.x"),
                      "wb") as f:
                f.write(msg)
            # a symlink inside alice's maildrop pointing outside
            os.symlink(os.path.join(outside, "cur", "1600000000.M1.x:2,"),
                       os.path.join(srv.user_dir("alice"), "cur",
                                    "1600000002.M3.link:2,"))
            for name in ("../outside", "..%2foutside", "mail/../outside"):
                c = srv.client()
                c.greeting()
                c.cmd("USER " + name)
                r = c.cmd("PASS secret")
                self.assertTrue(r.startswith("-ERR"), r)
                c.close()
            c = srv.client()
            c.login()
            n = len(fixture_messages("alice"))
            r = c.cmd("STAT")
            self.assertTrue(r.startswith("+OK %d " % n),
                            "a symlink must not be listed: %r" % r)
            for i in range(1, n + 1):
                first, body = c.multi("RETR %d" % i)
                self.assertTrue(first.startswith("+OK"), first)
                self.assertNotIn(marker, unstuff(body))
            self.assertTrue(c.cmd("RETR %d" % (n + 1)).startswith("-ERR"))
            c.quit()
            self.assertEqual(os.listdir(os.path.join(outside, "new")),
                             ["1600000001.M2.x"])
            self.assertEqual(os.listdir(os.path.join(outside, "cur")),
                             ["1600000000.M1.x:2,"])


class LoginQueue(unittest.TestCase):
    """Every PASS/AUTH goes through the login queue: a bounded share per
    reactor pass (one crypt(3), or several remembered passwords)."""

    def test_first_login_pipelined_behind_a_failed_one(self):
        # Cold login cache: the second PASS needs crypt(3) and is queued
        # from a session woken by the failure-delay timer.
        with Server(users=USERS) as srv:
            c = srv.client()
            c.send("USER alice\r\nPASS wrong\r\nUSER alice\r\n"
                   "PASS secret\r\nSTAT\r\nQUIT\r\n")
            replies = [c.line().decode() for _ in range(7)]
            self.assertEqual([r[:3] for r in replies],
                             ["+OK", "+OK", "-ER", "+OK", "+OK", "+OK",
                              "+OK"], replies)
            self.assertTrue(replies[4].startswith("+OK maildrop has 7 "),
                            replies)
            self.assertTrue(replies[5].startswith("+OK 7 "), replies)
            c.close()

    def test_burst_of_returning_clients_all_log_in(self):
        users = {"user%d" % i: "pw%d" % i for i in range(48)}
        with Server(users=users, mail=None) as srv:
            for name, pw in users.items():   # warm the login cache
                c = srv.client()
                c.login(name, pw)
                c.quit()
            clients = [srv.client() for _ in users]
            for c, (name, pw) in zip(clients, users.items()):
                c.send("USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n"
                       % (name, pw))
            for c in clients:
                replies = [c.line().decode() for _ in range(5)]
                self.assertTrue(replies[2].startswith("+OK maildrop"),
                                replies)
                self.assertTrue(replies[3].startswith("+OK 0 0"), replies)
                c.close()


if __name__ == "__main__":
    unittest.main()
