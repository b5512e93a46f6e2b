#!/usr/bin/env python3
"""Function and file sizes of the C++ sources, and the house limits (issue 32).

    scripts/code_size.py [--max-function 80] [--max-file 700] [--top N] PATH...

A function's size is its lines from the first line of its signature to its closing brace (what a
reader scrolls through); a file's is its line count. Lambdas and local classes count as part of the
function that holds them. Exits 1 naming every function and file over the limits, so CI can hold them.
The parser is a brace counter over the source with comments, strings and preprocessor lines blanked:
enough for this code base's style (it is not a C++ parser).
"""
import argparse
import pathlib
import re
import sys

CONTROL = re.compile(r"\b(if|for|while|switch|catch|do|else|return|try)\s*(\(|$)")


def blank(text):
    """Comments, string/char literals and preprocessor lines replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == "#":
            j = i
            while j < n and (text[j] != "\n" or text[j - 1] == "\\"):
                j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
            continue
        if c == "\n":
            at_line_start = True
            out.append(c)
            i += 1
            continue
        if not c.isspace():
            at_line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i)
            j = end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, line count) of each function body in the file."""
    text = blank(path.read_text())
    result = []
    stack = []  # one entry per open brace: "fn" (a function body), "scope" (namespace/class), "inner"
    header_start = 0  # offset where the current declaration began
    fn_start = []
    for i, c in enumerate(text):
        if c in ";}":
            if c == "}" and stack:
                kind = stack.pop()
                if kind == "fn":
                    name, start = fn_start.pop()
                    first = text.count("\n", 0, start) + 1
                    last = text.count("\n", 0, i) + 1
                    result.append((name, first, last - first + 1))
            header_start = i + 1
        elif c == "{":
            in_fn = "fn" in stack
            header = text[header_start:i].strip()
            if in_fn:
                stack.append("inner")
            elif re.search(r"\)\s*(const|noexcept|override|final|mutable|\s)*(->\s*[\w:<>, *&]+)?$", header) \
                    or re.search(r"\)\s*:\s*\w", header) and "(" in header:
                start = header_start + (len(text[header_start:i]) - len(text[header_start:i].lstrip()))
                m = re.search(r"([~\w:]+(?:operator\s*\S+?)?)\s*\(", header)
                name = m.group(1) if m else "?"
                if CONTROL.match(header):
                    stack.append("inner")
                else:
                    stack.append("fn")
                    fn_start.append((name, start))
            else:
                stack.append("scope")
            header_start = i + 1
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--max-function", type=int, default=80)
    ap.add_argument("--max-file", type=int, default=700)
    ap.add_argument("--top", type=int, default=0, help="also list the N longest functions")
    args = ap.parse_args()
    files = []
    for p in map(pathlib.Path, args.paths):
        files += sorted(q for q in (p.rglob("*") if p.is_dir() else [p]) if q.suffix in (".cpp", ".h", ".cu"))
    over, all_fns = [], []
    for f in files:
        n_lines = len(f.read_text().splitlines())
        if n_lines > args.max_file:
            over.append(f"{f}: {n_lines} lines (file limit {args.max_file})")
        for name, line, size in functions(f):
            all_fns.append((size, f"{f}:{line}", name))
            if size > args.max_function:
                over.append(f"{f}:{line}: {name} is {size} lines (function limit {args.max_function})")
    for size, where, name in sorted(all_fns, reverse=True)[: args.top]:
        print(f"{size:5d}  {where}  {name}")
    for line in over:
        print(line)
    if over:
        print(f"code_size: {len(over)} over the limits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
