"""UTF-8 byte tokenizer with HF PerceiverTokenizer's ids: [PAD]=0 [BOS]=1 [EOS]=2 [MASK]=3 [CLS]=4 [SEP]=5,
byte b -> b + 6 (262 ids). Special-token strings such as "[MASK]" in a text become their id."""

from __future__ import annotations

import re

SPECIALS = ("[PAD]", "[BOS]", "[EOS]", "[MASK]", "[CLS]", "[SEP]")
PAD, BOS, EOS, MASK, CLS, SEP = range(6)
OFFSET = len(SPECIALS)
VOCAB_SIZE = 256 + OFFSET
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")


def encode(text: str, *, add_special_tokens: bool = True, parse_special: bool = True) -> list[int]:
    """Text -> ids; "[MASK]" etc. map to their ids when parse_special (as HF's tokenizer does)."""
    ids: list[int] = []
    parts = _SPECIAL_RE.split(text) if parse_special else [text]
    for part in parts:
        if parse_special and part in SPECIALS:
            ids.append(SPECIALS.index(part))
        else:
            ids.extend(b + OFFSET for b in part.encode("utf-8"))
    return [CLS, *ids, SEP] if add_special_tokens else ids


def decode(ids, *, skip_special: bool = True) -> str:
    """Ids -> text; special ids are dropped (or written as their strings); invalid UTF-8 becomes U+FFFD."""
    out, pending = [], bytearray()
    for i in ids:
        i = int(i)
        if i >= OFFSET:
            pending.append(i - OFFSET)
            continue
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
            pending = bytearray()
        if not skip_special:
            out.append(SPECIALS[i])
    if pending:
        out.append(pending.decode("utf-8", errors="replace"))
    return "".join(out)
