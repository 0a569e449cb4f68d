"""A private Dovecot POP3 instance over a copy of a mail root, for
comparing answers with bin/pop3server.

It uses the benchmark's configuration (bench/dovecot/dovecot.conf.in:
passwd-file with the same $6$ hashes as our users file, Maildir, UIDL =
the Maildir base name as ours) with small process counts, listening on
127.0.0.1 at a free port.  Everything lives in one temporary folder;
nothing touches /etc/dovecot or a system instance.  Needs root (Dovecot
switches to the "mail" user to read the Maildirs).
"""
import os
import pwd
import resource
import shutil
import subprocess
import tempfile
import time

from pop3test import ROOT, free_port, wait_port

CONF_IN = os.path.join(ROOT, "bench", "dovecot", "dovecot.conf.in")
INSTALL = os.path.join(ROOT, "bench", "dovecot", "install.sh")
DOVECOT = "/usr/sbin/dovecot"


def _raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Dovecot:
    """Use as a context manager.  mail_root: the folder to copy (one
    Maildir per user); hashes: dict user -> $6$ hash."""

    def __init__(self, mail_root, hashes):
        self.mail_root = mail_root
        self.hashes = hashes
        self.port = None
        self.tmp = None
        self.conf = None

    def __enter__(self):
        subprocess.run([INSTALL], check=True)
        mail = pwd.getpwnam("mail")
        self.tmp = tempfile.mkdtemp(prefix="pop3conf-dovecot-")
        os.chmod(self.tmp, 0o755)
        self.maildir = os.path.join(self.tmp, "mail")
        shutil.copytree(self.mail_root, self.maildir, symlinks=True)
        run = os.path.join(self.tmp, "run")
        for sub in ("base", "state", "index", "control"):
            os.makedirs(os.path.join(run, sub))
        for path in (os.path.join(run, "index"), os.path.join(run, "control")):
            os.chown(path, mail.pw_uid, mail.pw_gid)
        for top, dirs, files in os.walk(self.maildir):
            for name in dirs + files:
                os.lchown(os.path.join(top, name), mail.pw_uid, mail.pw_gid)
        os.chown(self.maildir, mail.pw_uid, mail.pw_gid)
        passwd = os.path.join(run, "passwd")
        with open(passwd, "w") as f:
            for user, h in sorted(self.hashes.items()):
                f.write("%s:{SHA512-CRYPT}%s:%d:%d::%s/%s::\n"
                        % (user, h, mail.pw_uid, mail.pw_gid, self.maildir,
                           user))
        shutil.chown(passwd, group="dovecot")
        os.chmod(passwd, 0o640)
        self.port = free_port()
        values = {"RUN": run, "MAIL": self.maildir, "PORT": str(self.port),
                  "NPROC": "1", "UID": str(mail.pw_uid),
                  "GID": str(mail.pw_gid), "POP3_CLIENTS": "10",
                  "POP3_PROCS": "10", "POP3_MIN": "1"}
        with open(CONF_IN) as f:
            text = f.read()
        for key, value in values.items():
            text = text.replace("@%s@" % key, value)
        self.conf = os.path.join(run, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        try:
            subprocess.run([DOVECOT, "-c", self.conf], check=True,
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           preexec_fn=_raise_fd_limit)
            wait_port("127.0.0.1", self.port)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.conf is not None:
            pidfile = os.path.join(self.tmp, "run", "base", "master.pid")
            pid = None
            if os.path.exists(pidfile):
                with open(pidfile) as f:
                    pid = int(f.read().strip() or 0) or None
            subprocess.run([DOVECOT, "-c", self.conf, "stop"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while pid is not None and time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False
