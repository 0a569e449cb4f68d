#!/usr/bin/env python3
"""Runs the black-box protocol suite: every tests/protocol/test_*.py.

    python3 tests/protocol/run.py                 # everything
    python3 tests/protocol/run.py test_auth       # one file
    python3 tests/protocol/run.py test_trans.ReadOnly.test_noop

Ends with one line "protocol: N passed, M failed" (tests/lib/suite_runner.py).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("protocol", HERE, sys.argv[1:], needs=("pop3server",)))
