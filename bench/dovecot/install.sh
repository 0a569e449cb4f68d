#!/usr/bin/env bash
# Installs Dovecot's POP3 server (Debian: dovecot-core, dovecot-pop3d)
# when it is missing, for the two users of a private Dovecot: the
# benchmark (bench/run.sh) and the conformance tests
# (tests/conformance/).  A freshly installed package may start the
# system-wide Dovecot on 110/143: it is stopped, since it would share
# the two cores with what is measured.  Needs root.  Exit 0, or 1 with
# a message.
set -u

pkgs=()
[ -x /usr/sbin/dovecot ] || pkgs+=(dovecot-core)
[ -x /usr/lib/dovecot/pop3 ] || pkgs+=(dovecot-pop3d)
[ ${#pkgs[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "dovecot/install.sh: run as root to install ${pkgs[*]}" >&2
	exit 1
fi
echo "dovecot/install.sh: installing ${pkgs[*]}" >&2
if ! apt-get update -q >/dev/null ||
    ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${pkgs[@]}" >/dev/null; then
	echo "dovecot/install.sh: apt-get could not install ${pkgs[*]}" >&2
	exit 1
fi

if command -v systemctl >/dev/null 2>&1; then
	systemctl stop dovecot >/dev/null 2>&1 || true
	systemctl disable dovecot >/dev/null 2>&1 || true
fi
service dovecot stop >/dev/null 2>&1 || true
if [ -s /run/dovecot/master.pid ]; then
	kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
fi
exit 0
