"""Find the line of a key path in a TOML file's text (tomllib keeps no positions).

Understands table headers (`[a.b]`, `[[a.b]]`), dotted and quoted keys, and keys inside one-line inline tables
(`encoder = { use = "perceiver", num_latents = 32 }`). Good enough to point a user at the right line; when a key
cannot be found the line of its closest enclosing key or table is returned.
"""

from __future__ import annotations

import functools
import re

_BARE = r"[A-Za-z0-9_-]+"
_KEY = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_INLINE_KEY = re.compile(rf"({_BARE})\s*=")
_EQUALS = re.compile(r"\s*=")
_BARE_CHAR = re.compile(r"[A-Za-z0-9_-]")


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
            m = _EQUALS.match(rest, end + 1) if end != -1 else None
            if m and len(stack) > 1:
                found.append((stack[-1] + [rest[i + 1:end]], i))
            i = end + 1 if end != -1 else len(rest)
            continue
        m = _INLINE_KEY.match(rest, i)  # at position i: no copy of the rest of the line (a long line stays linear)
        if m and len(stack) > 1 and (i == 0 or not _BARE_CHAR.match(rest[i - 1])):
            found.append((stack[-1] + [m.group(1)], i))
            i = m.end()
            continue
        i += 1
    return found


def locate(text: str, path: list[str]) -> int | None:
    """1-based line where the longest prefix of `path` is defined, or None if not even its first key is.

    The file is scanned once (its index is cached), so locating one error costs O(len(path)), not a pass over the
    file: `perceiver validate` of a file with thousands of pipelines and errors stays linear in its size."""
    index = _index(text)
    for n in range(len(path), 0, -1):
        line = index.get(tuple(path[:n]))
        if line is not None:
            return line
    return None


@functools.lru_cache(maxsize=16)
def _index(text: str) -> dict[tuple[str, ...], int]:
    """Every key path the text defines, explicitly or as the prefix of a longer one -> the first line doing so."""
    index: dict[tuple[str, ...], int] = {}
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
            # the line defines the key itself and, implicitly, every enclosing table ([a.b] also defines a)
            for n in range(1, len(cand) + 1):
                index.setdefault(tuple(cand[:n]), lineno)
    return index
