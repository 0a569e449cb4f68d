"""Black-box comparison with Dovecot, the reference POP3 server.

Each case is one or more POP3 sessions of commands; they go, one command
at a time (or pipelined, when the case says so), to bin/pop3server and to
a private Dovecot serving a copy of the same Maildirs.  Per command:
  * the status (+OK, -ERR, "+ " for a SASL continuation) must agree;
  * multi-line bodies (LIST, UIDL, RETR, TOP, AUTH) must agree byte for
    byte; CAPA must list every capability Dovecot lists;
  * the single lines clients parse (STAT, LIST n, UIDL n) must agree.
Greeting and free-text parts of replies are not compared.

Sizes differ by design, and the comparison says so instead of skipping
them: a message whose file does not end in a line end (or is empty) is
sent by both servers with a CRLF added, which we count in LIST/STAT and
Dovecot does not (docs/design.md).  Dovecot's sizes are adjusted by that
CRLF before they are compared.

The other deliberate differences are listed in DEVIATIONS with their
reasons: there our documented answer is checked, and Dovecot must still
answer differently (a deviation that disappeared is reported too, so the
list stays true).
"""
import base64
import os
import shutil
import tempfile
import unittest

from dovecot import Dovecot
from pop3test import FIXTURES, Client, Server, _normalise_mtimes

PASSWORDS = {"alice": "secret", "edge": "edge-pw", "upd": "upd-pw"}

# The edge maildrop: (file name in cur/, content).  Names start with the
# delivery time, which also becomes the mtime, so both servers see the
# same order.
EDGE = [
    ("1700000201.E1.conf:2,", b""),
    ("1700000202.E2.conf:2,", b"\n"),
    ("1700000203.E3.conf:2,", b"Subject: cr\r\rline\rend\r\n"),
    ("1700000204.E4.conf:2,", b"Subject: no blank line\nX: y"),
    ("1700000205.E5.conf:2,", b"Subject: dots\n\n.\n..\n.x\n. \nend\n"),
    ("1700000206.E6.conf:2,", b"Subject: long\n\n" + b"x" * 5000 + b"\nyyy\n"),
    ("1700000207.E7.conf:2,", b"Subject: bytes\n\na\0b\n\xff\xfe\n"),
    ("1700000208.E8.conf:2,", b"Subject: mixed\r\n\nA\r\nB\nC\r\r\nD"),
    ("1700000209.E9.conf:2,", b"Subject: top\n\n1\n2\n3\n4\n5\n"),
    ("1700000210.E10.conf:2,", b"Subject: cr dot\n\na\r.b\n.\r.c\r\r.\n"),
]


def plain(*parts):
    return base64.b64encode(b"\0".join(p.encode() for p in parts)).decode()


def login(user):
    return ["USER " + user, "PASS " + PASSWORDS[user]]


# name -> list of sessions; a session is a list of command lines, or
# ("pipelined", [lines]) to send them in one write.
CASES = {
    # AUTHORIZATION
    "capa_before_login": [["CAPA"]],
    "user_pass": [login("alice") + ["STAT"]],
    "user_twice_last_wins": [["USER edge"] + login("alice") + ["STAT"]],
    "lower_case_commands": [["user alice", "pass secret", "stat"]],
    "auth_list": [["AUTH"]],
    "auth_plain_initial_response": [["AUTH PLAIN " + plain("", "alice",
                                                           "secret"),
                                     "STAT"]],
    "auth_plain_authzid_self": [["AUTH PLAIN " + plain("alice", "alice",
                                                       "secret"), "STAT"]],
    "auth_plain_continuation": [["AUTH PLAIN",
                                 plain("", "alice", "secret"), "STAT"]],
    "auth_plain_cancel": [["AUTH PLAIN", "*"] + login("alice")],
    "auth_unsupported_mechanisms": [["AUTH LOGIN", "AUTH CRAM-MD5"]],
    "transaction_commands_before_login": [["STAT", "RETR 1"]],
    "apop_and_stls_not_offered": [["APOP alice 0123456789abcdef", "STLS"]],
    "quit_before_login": [["QUIT"]],
    "capa_after_login": [login("alice") + ["CAPA"]],
    # TRANSACTION
    "stat_list_uidl": [login("alice") + ["STAT", "LIST", "UIDL"]],
    "list_and_uidl_each": [login("alice") +
                           ["LIST %d" % i for i in range(1, 8)] +
                           ["UIDL %d" % i for i in range(1, 8)]],
    "list_bad_numbers": [login("alice") +
                         ["LIST " + a for a in ("0", "8", "-1", "x", "1x",
                                                "+1", "01", "1 2",
                                                "99999999999999999999")]],
    "uidl_bad_numbers": [login("alice") +
                         ["UIDL " + a for a in ("0", "8", "x", "1 2")]],
    "retr_every_fixture": [login("alice") +
                           ["RETR %d" % i for i in range(1, 8)]],
    "retr_bad": [login("alice") + ["RETR", "RETR 0", "RETR 8", "RETR x",
                                   "RETR 1 2"]],
    "top_shapes": [login("alice") + ["TOP 1 0", "TOP 2 1", "TOP 2 3",
                                     "TOP 4 0", "TOP 4 5", "TOP 5 0",
                                     "TOP 5 3", "TOP 3 2",
                                     "TOP 1 99999999"]],
    "top_bad": [login("alice") + ["TOP", "TOP 1", "TOP 1 -1", "TOP 1 x",
                                  "TOP 0 1", "TOP 8 1", "TOP 1 1 1"]],
    "dele_rset": [login("alice") + ["DELE 1", "DELE 1", "RETR 1", "LIST 1",
                                    "UIDL 1", "TOP 1 0", "STAT", "LIST",
                                    "UIDL", "RSET", "LIST 1", "STAT"]],
    "dele_bad": [login("alice") + ["DELE", "DELE 0", "DELE 8", "DELE x"]],
    "noop_rset": [login("alice") + ["NOOP", "RSET", "NOOP"]],
    "login_commands_after_login": [login("alice") + ["USER alice",
                                                     "PASS secret",
                                                     "AUTH PLAIN"]],
    "unknown_command": [login("alice") + ["XYZZY", "NOOP"]],
    "lower_case_transaction": [login("alice") + ["list 1", "retr 2",
                                                 "uidl 3", "top 1 0",
                                                 "dele 1", "rset", "stat",
                                                 "noop"]],
    "pipelined": [("pipelined", login("alice") +
                   ["STAT", "LIST", "UIDL", "RETR 2", "TOP 5 0", "LIST 4",
                    "DELE 3", "LIST", "RSET", "NOOP"])],
    "edge_messages_list": [login("edge") + ["STAT", "LIST", "UIDL"]],
    "edge_messages_retr": [login("edge") +
                           ["RETR %d" % i for i in range(1, len(EDGE) + 1)]],
    "edge_messages_top": [login("edge") +
                          ["TOP %d %d" % (i, k)
                           for i in range(1, len(EDGE) + 1)
                           for k in (0, 1, 2)]],
    "quit_deletes_in_update": [login("upd") + ["DELE 1", "QUIT"],
                               login("upd") + ["STAT", "LIST", "UIDL"]],
    # Deviations (see DEVIATIONS).
    "arguments_on_commands_without_any": [login("alice") +
                                          ["NOOP x", "STAT x", "RSET x",
                                           "CAPA x", "NOOP"]],
    "quit_with_an_argument": [login("alice") + ["QUIT now"]],
    "trailing_space_after_an_argument": [login("alice") + ["RETR 1 ",
                                                           "LIST 2 "]],
    "top_count_past_64_bits": [login("alice") +
                               ["TOP 1 18446744073709551616",
                                "TOP 1 " + "9" * 40]],
    "leading_space_before_the_command": [login("alice") + [" RETR 1",
                                                           " LIST 2"]],
    "user_with_two_words": [["USER alice bob"]],
    "user_without_a_name": [["USER"] + login("alice")],
    "overlong_user_line": [["USER " + "a" * 300]],
    "bad_commands_before_login": [["XYZZY"] * 5],
    "too_many_bad_commands": [login("alice") + ["XYZZY"] * 21 + ["NOOP"]],
    "wrong_password": [["USER alice", "PASS wrong"]],
    "empty_password": [["USER alice", "PASS"]],
    "password_after_two_spaces": [["USER alice", "PASS  secret"]],
    "pass_without_user": [["PASS secret", "NOOP"]],
    "unknown_user": [["USER nobody", "PASS secret"]],
    "auth_plain_other_authzid": [["AUTH PLAIN " + plain("upd", "alice",
                                                        "secret")]],
    "auth_plain_bad_base64": [["AUTH PLAIN !!!!"] + login("alice")],
    "auth_plain_without_nuls": [["AUTH PLAIN " + plain("alicesecret")]],
    "auth_plain_empty_response": [["AUTH PLAIN", "="]],
    "auth_plain_extra_word": [["AUTH PLAIN " + plain("", "alice", "secret")
                               + " extra"] + login("alice")],
}

# Dovecot delays every login from an address that failed one: cases
# with a failed login connect from addresses of their own.
SOURCES = {"wrong_password": "127.0.0.2", "unknown_user": "127.0.0.3",
           "auth_plain_other_authzid": "127.0.0.4",
           "auth_plain_bad_base64": "127.0.0.5",
           "auth_plain_without_nuls": "127.0.0.6",
           "auth_plain_empty_response": "127.0.0.7",
           "empty_password": "127.0.0.8",
           "password_after_two_spaces": "127.0.0.9",
           "auth_plain_extra_word": "127.0.0.10"}

# (case, command) -> (our reply's start, why).  Dovecot must answer
# otherwise; we must answer this.
DEVIATIONS = {
    ("arguments_on_commands_without_any", "NOOP x"):
        ("-ERR", "RFC 1939 gives NOOP, STAT, RSET, QUIT no argument: a "
                 "wrong argument count is -ERR (spec); Dovecot ignores it"),
    ("arguments_on_commands_without_any", "STAT x"): ("-ERR", "as NOOP x"),
    ("arguments_on_commands_without_any", "RSET x"): ("-ERR", "as NOOP x"),
    ("arguments_on_commands_without_any", "CAPA x"): ("-ERR", "as NOOP x"),
    ("quit_with_an_argument", "QUIT now"): ("-ERR", "as NOOP x"),
    ("trailing_space_after_an_argument", "RETR 1 "):
        ("+OK", "spaces separate words, trailing ones too (typed by hand "
                "in telnet); Dovecot calls it noise after the number"),
    ("trailing_space_after_an_argument", "LIST 2 "): ("+OK 2 ", "as RETR"),
    ("leading_space_before_the_command", " RETR 1"):
        ("+OK", "as a trailing space; Dovecot: unknown command"),
    ("leading_space_before_the_command", " LIST 2"): ("+OK 2 ", "as RETR"),
    ("top_count_past_64_bits", "TOP 1 18446744073709551616"):
        ("+OK", "a line count larger than the body gives the whole "
                "message (spec), however large; Dovecot: 'Size too large'"),
    ("top_count_past_64_bits", "TOP 1 " + "9" * 40): ("+OK", "as above"),
    ("user_with_two_words", "USER alice bob"):
        ("-ERR", "a user name has no spaces: wrong argument count"),
    ("user_without_a_name", "USER"):
        ("-ERR", "USER needs a name (RFC 1939); Dovecot takes an empty one"),
    ("overlong_user_line", "USER " + "a" * 300):
        ("-ERR line too long", "lines over 255 octets are refused (spec)"),
    ("bad_commands_before_login", "XYZZY#5"):
        ("-ERR unknown command", "Dovecot drops a client after 3 bad "
         "commands before login; the spec says the session goes on (ours "
         "closes after 20 in a row)"),
}


def expected_deviation(case, command, occurrence):
    key = (case, "%s#%d" % (command, occurrence))
    if key in DEVIATIONS:
        return DEVIATIONS[key]
    return DEVIATIONS.get((case, command))


MULTI_ALWAYS = {"RETR", "TOP", "CAPA"}
MULTI_WITHOUT_ARGUMENT = {"LIST", "UIDL", "AUTH"}


def multi_line(command, first):
    words = command.split()
    verb = words[0].upper() if words else ""
    return first.startswith(b"+OK") and (
        verb in MULTI_ALWAYS or
        (verb in MULTI_WITHOUT_ARGUMENT and len(words) == 1))


def status(first):
    if first is None:
        return "closed"
    for token in (b"+OK", b"-ERR", b"+"):
        if first.startswith(token):
            return token.decode()
    return "garbage %r" % first[:40]


def exchange(port, sessions, source):
    """Runs the sessions against port, connecting from source; returns
    per session a list of (command, first line or None when closed, body
    or None)."""
    out = []
    for session in sessions:
        pipelined = isinstance(session, tuple)
        commands = session[1] if pipelined else session
        c = Client(port, timeout=30.0, source=source)
        replies = []
        try:
            c.line()    # greeting
            if pipelined:
                c.send("".join(cmd + "\r\n" for cmd in commands))
            for cmd in commands:
                if not pipelined:
                    try:
                        c.send(cmd + "\r\n")
                    except OSError:
                        replies.append((cmd, None, None))
                        break
                try:
                    first = c.line()
                except (EOFError, OSError):
                    replies.append((cmd, None, None))
                    break
                body = c.multiline() if multi_line(cmd, first) else None
                replies.append((cmd, first.rstrip(b"\r\n"), body))
            if (replies and replies[-1][0].upper().startswith("QUIT") and
                    status(replies[-1][1]) == "+OK"):
                c.closed(10)
        finally:
            c.close()
        out.append(replies)
    return out


class Conformance(unittest.TestCase):
    """One test per case of CASES."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="pop3conf-mail-")
        os.chmod(cls.root, 0o755)
        mail = os.path.join(cls.root, "mail")
        shutil.copytree(os.path.join(FIXTURES, "mail", "alice"),
                        os.path.join(mail, "alice"))
        shutil.copytree(os.path.join(FIXTURES, "mail", "bob"),
                        os.path.join(mail, "upd"))
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mail, "edge", sub), exist_ok=True)
        for name, data in EDGE:
            with open(os.path.join(mail, "edge", "cur", name), "wb") as f:
                f.write(data)
        _normalise_mtimes(mail)
        cls.unterminated = {u: unterminated(mail, u) for u in PASSWORDS}
        # Both servers get their own copy of the same tree.
        fixtures = os.path.join(cls.root, "fixtures")
        os.makedirs(fixtures)
        os.rename(mail, os.path.join(fixtures, "conformance"))
        cls.ours = Server(users=PASSWORDS, mail=os.path.join(
            fixtures, "conformance"))
        cls.ours.__enter__()
        try:
            cls.dovecot = Dovecot(os.path.join(fixtures, "conformance"),
                                  our_hashes(cls.ours.users_file))
            cls.dovecot.__enter__()
        except BaseException:
            cls.ours.__exit__(None, None, None)
            shutil.rmtree(cls.root, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dovecot.__exit__(None, None, None)
        finally:
            cls.ours.__exit__(None, None, None)
            shutil.rmtree(cls.root, ignore_errors=True)

    def compare(self, case):
        sessions = CASES[case]
        source = SOURCES.get(case, "127.0.0.1")
        ours = exchange(self.ours.port, sessions, source)
        theirs = exchange(self.dovecot.port, sessions, source)
        problems = []
        seen = {}
        for k, (a, b) in enumerate(zip(ours, theirs)):
            user = session_user(sessions[k])
            deleted = set()
            for i in range(max(len(a), len(b))):
                if i >= len(a) or i >= len(b):
                    problems.append("session %d: %d replies from us, %d from "
                                    "Dovecot" % (k + 1, len(a), len(b)))
                    break
                cmd = a[i][0]
                seen[cmd] = seen.get(cmd, 0) + 1
                why = self.step_differs(user, deleted, a[i], b[i])
                dev = expected_deviation(case, cmd, seen[cmd])
                if dev is not None:
                    ours_first = (a[i][1] or b"").decode("latin-1")
                    if not ours_first.startswith(dev[0]):
                        problems.append("%r: we answered %r, documented %r"
                                        % (cmd, ours_first, dev[0]))
                    elif why is None:
                        problems.append("%r: documented deviation gone "
                                        "(%s)" % (cmd, dev[1]))
                elif why is not None:
                    problems.append("%r: %s" % (cmd, why))
                track_deletions(cmd, a[i][1], deleted)
        self.assertEqual(problems, [], "\n".join(problems))

    def step_differs(self, user, deleted, ours, theirs):
        """None when the replies agree, else what differs."""
        cmd, a_first, a_body = ours
        _, b_first, b_body = theirs
        if status(a_first) != status(b_first):
            return "status %s vs Dovecot's %s (%r / %r)" % (
                status(a_first), status(b_first), a_first, b_first)
        words = cmd.upper().split()
        verb = words[0] if words else ""
        extra = self.unterminated.get(user, set()) - deleted
        if a_body is not None or b_body is not None:
            if verb == "CAPA":
                missing = (set(b_body.split(b"\r\n")) - {b"", b"CAPA"} -
                           set(a_body.split(b"\r\n")))
                return "CAPA lacks %r" % sorted(missing) if missing else None
            if verb == "LIST":
                b_body = adjust_listing(b_body, extra)
            if a_body != b_body:
                return "body differs:\n  ours    %r\n  Dovecot %r" % (
                    a_body[:300], b_body[:300])
            return None
        if a_first is None or not a_first.startswith(b"+OK"):
            return None
        if verb == "STAT":
            n, size = b_first.split()[1:3]
            b_first = b"+OK %s %d" % (n, int(size) + 2 * len(extra))
        elif verb == "LIST" and len(words) == 2:
            _, n, size = b_first.split()[:3]
            b_first = b"+OK %s %d" % (
                n, int(size) + (2 if int(n) in extra else 0))
        elif not (verb == "UIDL" and len(words) == 2):
            return None
        if a_first.split()[:3] != b_first.split()[:3]:
            return "%r vs Dovecot's %r" % (a_first, b_first)
        return None


def session_user(session):
    """The user a session logs in as (the last USER; AUTH cases: alice)."""
    commands = session[1] if isinstance(session, tuple) else session
    user = "alice"
    for cmd in commands:
        words = cmd.split()
        if len(words) == 2 and words[0].upper() == "USER":
            user = words[1]
    return user


def track_deletions(cmd, first, deleted):
    words = cmd.upper().split()
    if not first or not first.startswith(b"+OK") or not words:
        return
    if words[0] == "DELE" and len(words) == 2:
        deleted.add(int(words[1]))
    elif words[0] == "RSET":
        deleted.clear()


def adjust_listing(body, extra):
    """Dovecot's LIST body with our CRLF-added sizes."""
    lines = []
    for line in body.split(b"\r\n")[:-1]:
        n, size = line.split(b" ")
        lines.append(b"%s %d" % (n, int(size) + (2 if int(n) in extra else 0)))
    return b"".join(ln + b"\r\n" for ln in lines)


def unterminated(mail, user):
    """Numbers (delivery order) of the user's messages that are empty or
    do not end in LF: both servers add a CRLF; only we count it."""
    files = []
    for sub in ("cur", "new"):
        d = os.path.join(mail, user, sub)
        for name in os.listdir(d) if os.path.isdir(d) else ():
            p = os.path.join(d, name)
            files.append((os.stat(p).st_mtime, name, p))
    out = set()
    for i, (_, _, p) in enumerate(sorted(files), 1):
        with open(p, "rb") as f:
            data = f.read()
        if not data.endswith(b"\n"):
            out.add(i)
    return out


def our_hashes(users_file):
    """user -> $6$ hash, from our users file."""
    hashes = {}
    with open(users_file) as f:
        for line in f:
            name, _, h = line.rstrip("\n").partition(":")
            if h.startswith("$6$"):
                hashes[name] = h
    return hashes


def _add_case_tests():
    for case in CASES:
        def test(self, case=case):
            self.compare(case)
        test.__doc__ = "Dovecot and we agree on case %s" % case
        setattr(Conformance, "test_" + case, test)


_add_case_tests()


if __name__ == "__main__":
    unittest.main()
