#!/usr/bin/env python3
"""Runs the conformance suite: bin/pop3server against a private Dovecot
(tests/conformance/test_dovecot.py).  Needs root: it installs Dovecot
when missing (bench/dovecot/install.sh) and runs it as a private
instance on loopback.

    python3 tests/conformance/run.py
    python3 tests/conformance/run.py test_dovecot.Conformance.test_top_shapes

Ends with one line "conformance: N passed, M failed".
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from suite_runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("conformance", HERE, sys.argv[1:]))
