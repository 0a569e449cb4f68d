"""The raw MGMT client every integration suite uses (spec:
shared/specs/mgmt-protocol.md): send a command line, read status lines
and multi-line bodies exactly as the server wrote them.

A suite subclasses Mgmt to set ADMIN_PW, the password login() uses
when given none.  Python standard library only.
"""
import re

from pop3test import Client

GREETING = "+OK Management server ready"

# Commands whose +OK reply is multi-line (the spec's table).
MULTI = {"CAPA", "HISTORIC_CONNEC", "LIVE_CONNEC", "BYTES_TRANS", "USERS",
         "STATUS", "MAX_USERS", "DELETE_USER", "ADD_USER",
         "RESET_USER_PASSWORD", "CHANGE_PASSWORD", "FILTER"}


def parse_figures(lines):
    """A figures body ("KEY: n" lines) as dict KEY -> int."""
    out = {}
    for ln in lines:
        m = re.fullmatch(r"([A-Z][A-Z ]*[A-Z]): (\d+)", ln)
        assert m, "not a 'KEY: <integer>' line: %r" % ln
        assert m.group(1) not in out, "key twice: %r" % ln
        out[m.group(1)] = int(m.group(2))
    return out


class Mgmt(Client):
    """A raw MGMT client."""

    ADMIN_PW = None

    # A body never ends if a listing stops moving on: fail, rather than
    # fill the machine's memory.
    BODY_MAX_LINES = 1000000

    def text(self):
        """One reply line as str, without its CRLF."""
        raw = self.line()
        assert raw.endswith(b"\r\n")
        return raw[:-2].decode("latin-1")

    def ask(self, command):
        """Sends one command line (str or bytes); returns its status
        line (no CRLF)."""
        if isinstance(command, str):
            command = command.encode("latin-1")
        self.send(command + b"\r\n")
        return self.text()

    def login(self, password=None):
        g = self.text()
        assert g == GREETING, g
        r = self.ask("USER admin")
        assert r == "+OK USER", r
        if password is None:
            password = self.ADMIN_PW
        r = self.ask("PASS " + password)
        assert r == "+OK PASS", r
        return self

    def body(self):
        """The body lines of a multi-line reply, unstuffed, as str."""
        out = []
        while len(out) < self.BODY_MAX_LINES:
            ln = self.text()
            if ln == ".":
                return out
            out.append(ln[1:] if ln.startswith(".") else ln)
        raise AssertionError("a body of over %d lines: %r ..."
                             % (self.BODY_MAX_LINES, out[:3]))

    def run(self, command):
        """Sends a command; returns (status line, body lines or None).
        The body is read when the reply is +OK and the command is one of
        the multi-line ones."""
        first = self.ask(command)
        verb = command.split(" ", 1)[0].upper()
        if first.startswith("+OK") and verb in MULTI:
            return first, self.body()
        return first, None

    def ok(self, command):
        first, body = self.run(command)
        assert first.startswith("+OK"), "%s -> %r" % (command, first)
        return body

    def figures(self, command="STATUS"):
        """A figures reply as dict KEY -> int."""
        return parse_figures(self.ok(command))

    def status(self):
        return self.figures("STATUS")

    def users(self):
        """The USERS listing's user names (its two figure lines cut)."""
        return self.ok("USERS")[2:]

    def alive(self):
        """True when the session still answers (NOOP in ACTIVE state)."""
        return self.ask("NOOP") == "+OK NOOP"
