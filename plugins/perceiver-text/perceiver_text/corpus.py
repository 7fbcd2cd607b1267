"""`text.docstrings`: English prose that ships with every Python: the standard library's docstrings.

The source files of the configured modules are parsed with `ast` (nothing is imported or executed); module,
class and function docstrings are split into paragraphs; paragraphs that look like code (doctest prompts,
indented blocks, tables) are dropped; whitespace is collapsed; each paragraph is cut at sentence (else word)
ends into chunks of at most max_chars. A chunk goes to 'test' when crc32(chunk) % test_every == 0: the split is
fixed and does not depend on the module order. The text depends on the Python version installed.
"""

from __future__ import annotations

import ast
import re
import sysconfig
import zlib
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from .configs import DocstringsConfig

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def module_source(name: str) -> Path:
    """The .py file of a standard-library module (frozen modules such as os are read from their source too)."""
    base = Path(sysconfig.get_paths()["stdlib"]).joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    raise UserError(f"text.docstrings: {name!r} is not a pure-Python standard-library module here")


def module_docstrings(name: str) -> Iterator[str]:
    tree = ast.parse(module_source(name).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield doc


def _prose_paragraphs(doc: str) -> Iterator[str]:
    for para in re.split(r"\n\s*\n", doc):
        lines = para.splitlines()
        if not lines or any(l.startswith((" ", "\t")) or ">>>" in l or "..." in l[:4] for l in lines):
            continue
        text = " ".join(l.strip() for l in lines)
        letters = sum(ch.isalpha() or ch == " " for ch in text)
        if text and letters / len(text) > 0.85:
            yield text


def chunks(paragraph: str, max_chars: int) -> Iterator[str]:
    """Greedy chunks of whole sentences (a long sentence is cut at word ends)."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > max_chars:
            yield current
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    if current:
        yield current


class _Split(Sequence[Mapping[str, Any]]):
    def __init__(self, texts: list[str]):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        return {"text": self.texts[i]}


class DocstringCorpus(Dataset):
    splits = ("train", "test")

    def __init__(self, config: DocstringsConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        return {"modality": "text"}

    @cached_property
    def _splits(self) -> dict[str, _Split]:
        c = self.config
        seen: set[str] = set()
        train, test = [], []
        for name in c.modules:
            for doc in module_docstrings(name):
                for para in _prose_paragraphs(doc):
                    for chunk in chunks(para, c.max_chars):
                        if len(chunk) < c.min_chars or chunk in seen:
                            continue
                        seen.add(chunk)
                        (test if zlib.crc32(chunk.encode("utf-8")) % c.test_every == 0 else train).append(chunk)
        return {"train": _Split(train), "test": _Split(test)}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"text.docstrings has no split {split!r}; splits: train, test")
        return self._splits[split]
