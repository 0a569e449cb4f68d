#!/usr/bin/env python3
"""Runs the message filter integration suite: every tests/filters/test_*.py.

    python3 tests/filters/run.py                   # everything
    python3 tests/filters/run.py test_failures     # one file
    python3 tests/filters/run.py test_failures.Failures.test_exit_1_at_once

Ends with one line "filters: N passed, M failed" (tests/lib/suite_runner.py).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("filters", HERE, sys.argv[1:], needs=("pop3server",)))
