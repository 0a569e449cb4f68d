"""POP3S end to end (docs/operations.md 3): stunnel runs with a
configuration derived from the shipped docs/examples/stunnel-pop3s.conf
(only the foreground mode, setuid/setgid, ports and certificate paths
changed: the TLS settings are tested as shipped) in front of the test
server, with a throw-away self-signed certificate; curl and mpop fetch
the fixture messages over TLS byte-exact.  A missing openssl, stunnel,
curl or mpop is a failure."""
import os
import re
import shutil
import ssl
import tempfile
import unittest

from opslib import (Server, Stunnel, clean_env, make_cert, need,
                    run, tls_client, tmpdir, uidl_map, wait_for, wire_form)

USER, PASSWORD = "alice", "secret"
# The example's TLS 1.2 ciphers (forward-secret AEAD only).
EXAMPLE_CIPHERS = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                   "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                   "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}


class Pop3s(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="ops-tls-")
        try:
            cls.cert, cls.key = make_cert(cls.certdir)
        except BaseException:
            shutil.rmtree(cls.certdir, True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certdir, True)

    def setUp(self):
        self.s = Server(users={USER: PASSWORD}).__enter__()
        self.addCleanup(self.s.__exit__, None, None, None)
        self.work = tmpdir(self, "ops-tls-work-")
        self.tunnel = Stunnel(self.work, self.cert, self.key,
                              self.s.port).__enter__()
        self.addCleanup(self.tunnel.__exit__, None, None, None)

    def messages(self):
        """[(number, path, bytes)] of alice's maildrop, numbered by the
        server (mapped through UIDL, over TLS)."""
        c, _ = tls_client(self.tunnel.port)
        try:
            c.login(USER, PASSWORD)
            uids = uidl_map(c)
            c.quit()
        finally:
            c.close()
        cur = os.path.join(self.s.maildir, USER, "cur")
        by_uid = {n.split(":")[0]: os.path.join(cur, n) for n in os.listdir(cur)}
        out = []
        for n in sorted(uids):
            with open(by_uid[uids[n]], "rb") as f:
                out.append((n, by_uid[uids[n]], f.read()))
        self.assertGreaterEqual(len(out), 5, "fixture maildrop too small")
        return out

    def curl(self, path, *args):
        url = "pop3s://%s:%s@127.0.0.1:%d%s" % (USER, PASSWORD,
                                                self.tunnel.port, path)
        r = run([need("curl"), "-q", "--insecure", "-s", "-S", "--noproxy", "*",
                 "--max-time", "15"] + list(args) + [url], env=clean_env(HOME=self.work))
        self.assertEqual(r.rc, 0, r)
        return r.out

    def test_tls_handshake_and_greeting(self):
        c, s = tls_client(self.tunnel.port)
        try:
            self.assertTrue(c.greeting().startswith("+OK"))
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
            self.assertEqual(c.cmd("QUIT")[:3], "+OK")
        finally:
            c.close()

    def test_example_cipher_policy(self):
        # TLS 1.2 with everything the client library allows: the cipher
        # stunnel picks is one of the example's list.
        c, s = tls_client(self.tunnel.port, maximum=ssl.TLSVersion.TLSv1_2)
        try:
            self.assertEqual(s.version(), "TLSv1.2")
            self.assertIn(s.cipher()[0], EXAMPLE_CIPHERS)
            self.assertTrue(c.greeting().startswith("+OK"))
        finally:
            c.close()
        # A TLS 1.2 client offering only static-RSA AEAD ciphers (which
        # OpenSSL's defaults would accept) is refused: the example's
        # "ciphers =" line is in force.
        with self.assertRaises(ssl.SSLError):
            c, s = tls_client(self.tunnel.port, maximum=ssl.TLSVersion.TLSv1_2,
                              ciphers="AES128-GCM-SHA256:AES256-GCM-SHA384")
            c.close()

    def test_curl_retr_every_message(self):
        msgs = self.messages()
        for n, path, data in msgs:
            with self.subTest(msg=n, file=os.path.basename(path)):
                # curl un-stuffs dot lines and drops the terminator: what
                # it prints is the message's wire form (tests/e2e/test_curl.py).
                self.assertEqual(self.curl("/%d" % n), wire_form(data))

    def test_curl_list(self):
        msgs = self.messages()
        want = b"".join(b"%d %d\r\n" % (n, len(wire_form(d))) for n, _, d in msgs)
        self.assertEqual(self.curl("/"), want)

    def test_server_log_peer_matches_stunnel_log(self):
        # operations.md 3/6: stunnel's "connected remote server from
        # 127.0.0.1:P" names the peer pop3server logs for that session.
        self.curl("/1")
        m = wait_for(lambda: re.search(
            r"Service \[pop3s\] connected remote server from 127\.0\.0\.1:(\d+)",
            self.tunnel.log_text()), timeout=5)
        self.assertTrue(m, "stunnel logged no connection:\n" + self.tunnel.log_text())
        port = m.group(1)
        line = self.s.wait_log(r"pop3\[\d+\] 127\.0\.0\.1:%s user=%s logout" % (port, USER))
        self.assertTrue(line, "no logout line for peer port %s:\n%s" % (port, self.s.log_text()))

    def mpop_config(self, keep, delivery):
        p = os.path.join(self.work, "mpoprc")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("defaults\ntimeout 20\nreceived_header off\n"
                    "account ops\nhost 127.0.0.1\nport %d\nuser %s\n"
                    "password %s\nauth user\ndelivery %s\nkeep %s\n"
                    "uidls_file %s\n" % (self.tunnel.port, USER, PASSWORD,
                                         delivery, "on" if keep else "off",
                                         os.path.join(self.work, "uidls")))
        return p

    def mpop(self, keep):
        md = os.path.join(self.work, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        cfg = self.mpop_config(keep, "maildir " + md)
        r = run([need("mpop"), "-C", cfg, "--tls=on", "--tls-starttls=off",
                 "--tls-certcheck=off", "--keep=%s" % ("on" if keep else "off"),
                 "ops"], env=clean_env(HOME=self.work))
        self.assertEqual(r.rc, 0, r)
        got = []
        for name in os.listdir(os.path.join(md, "new")):
            got.append(read_bytes(os.path.join(md, "new", name)))
        return sorted(got), r

    def test_mpop_fetch_exact(self):
        msgs = self.messages()
        got, r = self.mpop(keep=True)
        # mpop delivers with LF line ends, un-stuffed (tests/e2e/test_mpop.py).
        want = sorted(wire_form(d).replace(b"\r\n", b"\n") for _, _, d in msgs)
        self.assertEqual(len(got), len(want), r)
        self.assertEqual(got, want, r)
        for _, path, _ in msgs:
            self.assertTrue(os.path.exists(path), "keep on, yet %s gone" % path)

    def test_mpop_keep_off_deletes(self):
        msgs = self.messages()
        got, r = self.mpop(keep=False)
        self.assertEqual(len(got), len(msgs), r)
        cur = os.path.join(self.s.maildir, USER, "cur")
        self.assertEqual(os.listdir(cur), [], "messages left after QUIT over TLS")
        self.assertTrue(self.s.wait_log(r"user=%s logout .*dele=%d/" % (USER, len(msgs))),
                        self.s.log_text())


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
