"""MGMT listens on loopback only by default (127.0.0.1 and ::1): a server
started without -L cannot be reached on a non-loopback address of the
machine, while POP3 (on all addresses) can; -L chooses another address.
At most 64 MGMT sessions are open at once."""
import re
import subprocess
import time
import unittest

from mgmtlib import (GREETING, DefaultMgmtAddrServer, Mgmt, MgmtServer,
                     connect_result, ipv6_loopback_available,
                     listening_addresses, non_loopback_ipv4)

LOOPBACK = {"127.0.0.1", "::1"}


def non_loopback_ipv6():
    """A global (non-loopback, non-link-local) IPv6 address, or None."""
    try:
        out = subprocess.run(["ip", "-6", "-o", "addr", "show", "scope",
                              "global"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for a in re.findall(r"inet6 ([0-9a-fA-F:]+)/", out):
        if a != "::1":
            return a
    return None


class DefaultMgmtAddress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # no -L; POP3 without -l too (all addresses): the control that
        # proves the non-loopback address is reachable at all
        cls.srv = DefaultMgmtAddrServer(listen=None).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_reachable_on_ipv4_loopback(self):
        m = Mgmt(self.srv.mgmt_port, host="127.0.0.1")
        try:
            self.assertEqual(m.text(), GREETING)
        finally:
            m.close()

    def test_reachable_on_ipv6_loopback(self):
        if not ipv6_loopback_available():
            # no ::1 here: then MGMT must not listen on any IPv6 address
            self.assertFalse([a for a in listening_addresses(
                self.srv.mgmt_port) if ":" in a])
            return
        m = Mgmt(self.srv.mgmt_port, host="::1")
        try:
            self.assertEqual(m.text(), GREETING)
        finally:
            m.close()

    def test_bound_only_to_loopback(self):
        addrs = listening_addresses(self.srv.mgmt_port)
        self.assertTrue(addrs, "nothing listens on the MGMT port?")
        self.assertLessEqual(set(addrs), LOOPBACK, addrs)

    def test_not_reachable_on_non_loopback_ipv4(self):
        addr = non_loopback_ipv4()
        if addr is None:
            # no such address on this machine: the bound addresses decide
            self.assertLessEqual(set(listening_addresses(
                self.srv.mgmt_port)), LOOPBACK)
            return
        self.assertEqual(connect_result(addr, self.srv.port), "open",
                         "POP3 not reachable on %s: bad control" % addr)
        self.assertNotEqual(connect_result(addr, self.srv.mgmt_port),
                            "open", "MGMT reachable on %s" % addr)

    def test_not_reachable_on_non_loopback_ipv6(self):
        addr = non_loopback_ipv6()
        if addr is None:
            self.assertFalse(set(listening_addresses(self.srv.mgmt_port))
                             - LOOPBACK)
            return
        self.assertEqual(connect_result(addr, self.srv.port), "open",
                         "POP3 not reachable on %s: bad control" % addr)
        self.assertNotEqual(connect_result(addr, self.srv.mgmt_port),
                            "open", "MGMT reachable on %s" % addr)


class ChosenMgmtAddress(unittest.TestCase):
    def test_minus_L_chooses_the_address(self):
        addr = non_loopback_ipv4()
        if addr is None:
            addr = "127.0.0.2"      # still not the default pair
        with DefaultMgmtAddrServer(args=["-L", addr]) as srv:
            m = Mgmt(srv.mgmt_port, host=addr)
            try:
                self.assertEqual(m.text(), GREETING)
            finally:
                m.close()
            self.assertEqual(listening_addresses(srv.mgmt_port), [addr])


if __name__ == "__main__":
    unittest.main()


class SessionLimit(unittest.TestCase):
    """At most 64 MGMT sessions at once: idle, unauthenticated ones must
    not take the descriptors POP3 needs."""

    LIMIT = 64

    def test_65th_refused_and_pop3_still_served(self):
        with MgmtServer() as srv:
            open_ = []
            try:
                for _ in range(self.LIMIT):
                    m = Mgmt(srv.mgmt_port)
                    open_.append(m)
                    self.assertEqual(m.text(), GREETING)
                extra = Mgmt(srv.mgmt_port)
                self.assertEqual(extra.text(),
                                 "-ERR TOO MANY MANAGEMENT SESSIONS")
                self.assertTrue(extra.closed(), "refused, but left open")
                extra.close()
                c = srv.client()
                c.login("alice", srv.users["alice"])
                self.assertTrue(c.cmd("STAT").startswith("+OK"))
                c.quit()
                # One closes: the next is greeted again.
                open_.pop().close()
                deadline = time.monotonic() + 5
                while True:
                    m = Mgmt(srv.mgmt_port)
                    first = m.text()
                    if first == GREETING or time.monotonic() > deadline:
                        break
                    m.close()
                    time.sleep(0.05)
                open_.append(m)
                self.assertEqual(first, GREETING)
                self.assertIn("too many management sessions",
                              srv.log_text())
            finally:
                for m in open_:
                    m.close()
