"""Find the line of a key path in a TOML file's text (tomllib keeps no positions).

Understands table headers (`[a.b]`, `[[a.b]]`), dotted and quoted keys, and keys inside one-line inline tables
(`encoder = { use = "perceiver", num_latents = 32 }`). Good enough to point a user at the right line; when a key
cannot be found the line of its closest enclosing key or table is returned.
"""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_KEY = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_KEY, dotted)]


def _inline_keys(rest: str, table: list[str]) -> list[tuple[list[str], int]]:
    """Keys defined inside inline tables on the rest of a line, with their nesting, as full paths."""
    found, stack, i = [], [table], 0
    while i < len(rest):
        ch = rest[i]
        if ch == "{":
            # the key that opened this inline table is the last one recorded at this depth
            stack.append(found[-1][0] if found and len(found[-1][0]) == len(stack[-1]) + 1 else stack[-1])
            i += 1
            continue
        if ch == "}":
            stack.pop() if len(stack) > 1 else None
            i += 1
            continue
        if ch in "\"'":
            end = rest.find(ch, i + 1)
            m = re.match(r"\s*=", rest[end + 1:]) if end != -1 else None
            if m and len(stack) > 1:
                found.append((stack[-1] + [rest[i + 1:end]], i))
            i = end + 1 if end != -1 else len(rest)
            continue
        m = re.match(rf"({_BARE})\s*=", rest[i:])
        if m and len(stack) > 1 and (i == 0 or not re.match(r"[A-Za-z0-9_-]", rest[i - 1])):
            found.append((stack[-1] + [m.group(1)], i))
            i += m.end()
            continue
        i += 1
    return found


def locate(text: str, path: list[str]) -> int | None:
    """1-based line where the longest prefix of `path` is defined, or None if not even its first key is."""
    best_len, best_line = 0, None
    table: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            table = _split_key(m.group(1))
            candidates = [table]
        else:
            m = _ASSIGN.match(line)
            if not m:
                continue
            key_path = table + _split_key(m.group(1))
            candidates = [key_path] + [p for p, _ in _inline_keys(line[m.end():], [*key_path])]
        for cand in candidates:
            n = _common_prefix(cand, path)
            # the line defines the key itself or an enclosing table ([a.b] also defines a, implicitly)
            if (n == len(cand) or n == len(path)) and n > best_len:
                best_len, best_line = n, lineno
    return best_line


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
