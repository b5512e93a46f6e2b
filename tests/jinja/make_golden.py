#!/usr/bin/env python3
"""Renders tests/jinja/cases.py with jinja2 in transformers' own chat-template environment
(transformers.utils.chat_template_utils._compile_jinja_template: trim_blocks, lstrip_blocks,
loopcontrols, the immutable sandbox, its tojson, raise_exception, strftime_now, dict, namespace)
and writes each answer (the text, or the error's class and message) to tests/data/jinja_cases.json,
which test_jinja.cpp holds our engine to on every build.
  make_golden.py [--check]    --check: compare with the committed file instead (interop test)
"""
import json
import os
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cases import CASES  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "data", "jinja_cases.json")


def render(template, variables):
    try:
        return {"text": _compile_jinja_template(template).render(**variables)}
    except Exception as e:  # noqa: BLE001 - every jinja2/Python error is an expected answer here
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names), "duplicate case names"
    out = [{"name": name, "template": template, "vars": variables, **render(template, variables)} for name, template, variables in CASES]
    text = json.dumps(out, ensure_ascii=False, indent=1) + "\n"
    if "--check" in sys.argv:
        same = open(GOLDEN, encoding="utf-8").read() == text
        print(f"jinja cases: {len(out)}, committed answers {'equal' if same else 'DIFFER from'} jinja2's today")
        sys.exit(0 if same else 1)
    with open(GOLDEN + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(GOLDEN + ".tmp", GOLDEN)
    print(f"wrote {len(out)} cases ({sum('error' in c for c in out)} errors) to {GOLDEN}")


if __name__ == "__main__":
    main()
