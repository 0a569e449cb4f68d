#!/usr/bin/env python3
"""Runs the operations suite: every tests/ops/test_*.py.

    python3 tests/ops/run.py                       # everything
    python3 tests/ops/run.py test_tls              # one file
    python3 tests/ops/run.py test_tls.Pop3s.test_curl_retr_every_message

Ends with one line "ops: N passed, M failed" (tests/lib/suite_runner.py).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("ops", HERE, sys.argv[1:], needs=("pop3server", "admin_monitor")))
