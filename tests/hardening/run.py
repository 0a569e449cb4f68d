#!/usr/bin/env python3
"""Runs the hardening suite: every tests/hardening/test_*.py (resource
exhaustion, hostile input, crash safety; docs/security.md says what
each test proves).

    python3 tests/hardening/run.py                    # everything
    python3 tests/hardening/run.py test_crash         # one file
    python3 tests/hardening/run.py test_crash.KillNine.test_kill_9_loop

Ends with exactly one line "hardening: N passed, M failed" (the shared
runner tests/lib/suite_runner.py): skips and errors count as failures,
and the exit status is 0 only when M == 0.  Needs root (it mounts a
tmpfs and lowers descriptor limits); the server under test is
bin/pop3server, or $POP3SERVER_BIN.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("hardening", HERE, sys.argv[1:], needs=("pop3server",)))
