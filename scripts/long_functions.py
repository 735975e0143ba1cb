#!/usr/bin/env python3
"""Lists C++ function bodies longer than a limit (default 120 lines) under the given folders.

A brace-matching scan, not a parser: it strips comments, strings and character literals, then
treats a `{` that follows `)` (optionally `const`, `override`, `noexcept`, `-> T`, or a
constructor's initialiser list) at namespace or class scope as the start of a function body.
Lambdas inside a function count toward that function. Generated tables are skipped by name.
"""
import re
import sys
from pathlib import Path

SKIP = ("unicode_tables.cc",)


def strip(text):
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            seg = text[i:(n if j < 0 else j + 2)]
            out.append("\n" * seg.count("\n"))
            i = n if j < 0 else j + 2
        elif c == "'" and re.search(r"(?<![\w.])\d[\w']*$", text[max(0, i - 40):i]) and i + 1 < n and text[i + 1].isalnum():
            out.append(c)  # digit separator (5'000), not a character literal
            i += 1
        elif text.startswith('R"', i) and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            seg = text[i:(n if j < 0 else j + len(end))]
            out.append('""' + "\n" * seg.count("\n"))
            i = n if j < 0 else j + len(end)
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


HEAD = re.compile(r"\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(final\s*)?(->\s*[\w:<>,\s*&]+)?\s*$")
INIT = re.compile(r"\)\s*:\s*[\w:]+[({]")


def scan(path, limit):
    raw = Path(path).read_text(encoding="utf-8", errors="replace")
    text = strip(raw)
    if text.count("\n") != raw.count("\n") or text.count("{") != text.count("}"):
        print(f"warning: {path}: the scan lost its place (unusual literal?); not scanned")
        return []
    stack = []  # (kind, start_line, name)
    line = 1
    found = []
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            before = text[max(0, i - 400):i]
            in_func = any(k == "func" for k, _, _ in stack)
            kind = "block"
            name = ""
            if not in_func:
                tail = before.rstrip()
                is_init_list = INIT.search(before[-400:]) and tail.endswith((")", "}"))
                if HEAD.search(tail) or is_init_list:
                    kind = "func"
                    stmt = re.split(r"[;{}]", before)[-1]
                    m = re.findall(r"([\w:~]+)\s*\(", stmt)
                    name = m[0] if m else "?"
                    if name in ("if", "for", "while", "switch", "catch"):
                        kind = "block"
            stack.append((kind, line, name))
        elif c == "}" and stack:
            kind, start, name = stack.pop()
            if kind == "func" and line - start + 1 > limit:
                found.append((line - start + 1, path, start, name))
    return found


def main(argv):
    limit = 120
    roots = []
    for a in argv:
        if a.startswith("--limit="):
            limit = int(a.split("=", 1)[1])
        else:
            roots.append(a)
    rows = []
    for root in roots or ["src", "cli"]:
        paths = [Path(root)] if Path(root).is_file() else sorted(Path(root).rglob("*"))
        for p in paths:
            if p.suffix in (".cc", ".h") and p.name not in SKIP and not p.name.endswith("_test.cc"):
                rows.extend(scan(str(p), limit))
    for n, path, start, name in sorted(rows, reverse=True):
        print(f"{n:5d}  {path}:{start}  {name}")
    return 1 if rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
