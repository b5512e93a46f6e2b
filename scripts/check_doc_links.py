#!/usr/bin/env python3
"""Every relative link of README.md and docs/*.md resolves: the file exists, and a #anchor names a
heading of that file (GitHub's slugs); and the user docs name no issue numbers (a reader has no
tracker). Exits 1 naming each broken link or issue number with its file and line.

    scripts/check_doc_links.py [ROOT]
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    out = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


link = re.compile(r"\]\(([^)\s]+)\)")
errors, checked = [], 0
for doc in [root / "README.md"] + sorted((root / "docs").glob("*.md")):
    in_code = False
    for n, line in enumerate(doc.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        if re.search(r"\bissues? \d+|\bfirst part\b", line, re.I):
            errors.append(f"{doc.relative_to(root)}:{n}: names an issue of the tracker ({line.strip()[:60]}...)")
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue
            checked += 1
            file, _, anchor = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            where = f"{doc.relative_to(root)}:{n}: link ({target})"
            if not dest.exists():
                errors.append(f"{where}: no such file {dest.relative_to(root) if root in dest.parents else dest}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                errors.append(f"{where}: no heading '#{anchor}' in {dest.relative_to(root)}")
for e in errors:
    print("check_doc_links: " + e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check_doc_links: {checked} relative links in README.md and docs/, all resolve")
