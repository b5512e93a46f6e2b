#!/usr/bin/env python3
"""Interop: the Jinja engine's referee answers (tests/data/jinja_cases.json, which test_jinja.cpp
holds our engine to in every build leg) are still what jinja2 renders today in transformers'
chat-template environment: tests/jinja/make_golden.py --check re-renders all cases and compares.
  test_jinja_referee.py BUILD_DIR
"""
import os
import subprocess
import sys

from common import ROOT, check, finish


def main():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "jinja", "make_golden.py"), "--check"], capture_output=True, text=True,
                       timeout=300)
    print(r.stdout.strip(), flush=True)
    check(r.returncode == 0, f"the committed referee answers differ from jinja2's: {r.stdout.strip()} {r.stderr[-2000:]}")
    finish()


if __name__ == "__main__":
    main()
