#!/usr/bin/env python3
"""Runs the MGMT integration suite: every tests/mgmt/test_*.py.

    python3 tests/mgmt/run.py                     # everything
    python3 tests/mgmt/run.py test_auth           # one file
    python3 tests/mgmt/run.py test_auth.AuthState.test_quit_in_auth_state

Ends with one line "mgmt: N passed, M failed" (tests/lib/suite_runner.py).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("mgmt", HERE, sys.argv[1:], needs=("pop3server", "admin_monitor")))
