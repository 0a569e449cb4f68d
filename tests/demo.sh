#!/usr/bin/env bash
# `make run`: the server on its defaults (POP3 1110, MGMT 6000) with the
# demo users of README.md, on a fresh copy of mail/ in run/ so that the
# tracked demo data never changes.  Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."
rm -rf run
mkdir -p run
cp -R mail run/mail
# A checkout gives every message the same mtime, and the order a client
# sees follows delivery time: each message gets the time its name holds,
# so message 1 is the oldest, run after run.
for f in run/mail/*/cur/* run/mail/*/new/*; do
	[ -f "$f" ] || continue
	name=${f##*/}
	touch -d "@${name%%.*}" "$f"
done
exec bin/pop3server -d run/mail -U run/pop3server.users \
	-u admin:admin-demo -u alice:alice-demo -u bob:bob-demo "$@"
