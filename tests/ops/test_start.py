"""Start-up failures as a service manager sees them (pop3server(8) EXIT
STATUS, docs/examples/pop3server.service): a host name given to -l that
the resolver cannot answer yet (DNS not up at boot) is a run-time
failure, status 1, which Restart=on-failure retries, not the status 2 of
a bad command line, which RestartPreventExitStatus=2 leaves alone."""
import os
import unittest

from opslib import SERVER_BIN, free_port, need, need_root, run, tmpdir


class Resolver(unittest.TestCase):

    def setUp(self):
        need_root(self)     # unshare -n needs CAP_SYS_ADMIN
        self.unshare = need("unshare")
        tmp = tmpdir(self)
        self.mail = os.path.join(tmp, "mail")
        os.mkdir(self.mail)
        self.users = os.path.join(tmp, "users")

    def start(self, address):
        cmd = [SERVER_BIN, "--allow-root", "-l", address,
               "-p", str(free_port()), "-P", str(free_port()),
               "-d", self.mail, "-U", self.users]
        # A network namespace of its own has no route to any resolver.
        return run([self.unshare, "-n"] + cmd)

    def test_resolver_unreachable_is_status_1(self):
        r = self.start("pop3-test.example")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("-l: cannot resolve 'pop3-test.example' now",
                      r.stderr)
        self.assertFalse(os.path.exists(self.users), "users file written")
