"""How rngtrace words counts and module paths: one helper each, for every report.

Counts: :func:`plural`, :func:`noun`. Module paths: :func:`module_label`, and the blocks
of a model said once (``layer.{0..11}.attn``: :func:`fold_names`, :func:`name_list`,
:func:`fold_numbered` for tables). Text from a log, made safe to show:
:func:`printable`.

>>> plural(1, "draw"), plural(1200, "draw"), plural(2, "parameter or buffer",
...                                                 "parameters or buffers")
('1 draw', '1,200 draws', '2 parameters or buffers')
>>> noun(1, "rank"), noun(3, "rank")
('rank', 'ranks')
>>> module_label("blocks.0"), module_label(""), module_label(None)
('blocks.0', '(root)', '-')
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence

__all__ = ["fold_names", "fold_numbered", "module_label", "name_list", "noun", "plural",
           "printable"]


def noun(n: int, word: str, many: str | None = None) -> str:
    """``word`` as ``n`` of it are called: ``word`` for one, ``many`` (default ``word``
    + ``"s"``) for any other number, zero included."""
    return word if n == 1 else (many or word + "s")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word`` (see :func:`noun`), the number with thousands separators."""
    return f"{n:,} {noun(n, word, many)}"


def module_label(path: str | None) -> str:
    """A module path for display: ``"(root)"`` for the model itself (``""``), ``"-"``
    outside modules (None)."""
    return "-" if path is None else (path or "(root)")


def fold_numbered(names: Sequence[str], alike: Sequence[Hashable] | None = None,
                  most: int = 8) -> list[tuple[int, str]]:
    """Dotted names that differ only in their first number, said once.

    The first all-digit part of each name is taken out; names then equal (and whose
    ``alike`` entries are equal, when given: a table row's other cells) are one entry
    when there are three or more (two read better whole), with their numbers as a range
    (``layer.{0..11}.attn``), a list (``{0,2,5}``) or, more than ``most`` of them, ``*``
    (``layer.*.attn``, a pattern ``rngtrace show --module`` takes). Returns, in order,
    each entry's first index in ``names`` and its text.

    >>> fold_numbered(["emb", "h.0.mlp", "h.1.mlp", "h.2.mlp", "h.3.mlp"], "aaaab")
    [(0, 'emb'), (1, 'h.{0..2}.mlp'), (4, 'h.3.mlp')]
    """
    keys: list[tuple[str, str, Hashable] | None] = []
    groups: dict[tuple[str, str, Hashable], list[int]] = {}
    for i, name in enumerate(names):
        parts = name.split(".")
        at = next((k for k, p in enumerate(parts) if p.isdecimal()), None)
        if at is None:
            keys.append(None)
            continue
        key = (".".join(parts[:at]), ".".join(parts[at + 1:]),
               alike[i] if alike is not None else None)
        keys.append(key)
        groups.setdefault(key, []).append(int(parts[at]))
    out: list[tuple[int, str]] = []
    done: set[tuple[str, str, Hashable]] = set()
    for i, (name, k) in enumerate(zip(names, keys, strict=True)):
        if k is None or len(groups[k]) <= 2:
            out.append((i, name))
        elif k not in done:
            done.add(k)
            out.append((i, _folded(k[0], sorted(set(groups[k])), k[1], most)))
    return out


def _folded(head: str, nums: list[int], tail: str, most: int) -> str:
    if nums == list(range(nums[0], nums[-1] + 1)):
        mid = f"{{{nums[0]}..{nums[-1]}}}"
    elif len(nums) <= most:
        mid = "{" + ",".join(map(str, nums)) + "}"
    else:
        mid = "*"
    return ".".join(p for p in (head, mid, tail) if p)


def fold_names(names: Iterable[str], most: int = 8) -> list[str]:
    """:func:`fold_numbered` for a list of names: the blocks of a model said once.

    >>> fold_names(["emb.weight", "layer.0.q.weight", "layer.1.q.weight", "layer.0.k.weight",
    ...             "layer.1.k.weight", "layer.3.k.weight", "layer.2.q.weight"])
    ['emb.weight', 'layer.{0..2}.q.weight', 'layer.{0,1,3}.k.weight']
    >>> fold_names(["a.0", "a.1"])
    ['a.0', 'a.1']
    """
    return [text for _, text in fold_numbered(list(names), most=most)]


def name_list(names: Iterable[str], limit: int) -> str:
    """Names folded (:func:`fold_names`), the first ``limit`` of them, then how many more.

    >>> name_list(["a", "h.0", "h.1", "h.2", "b", "c"], 2)
    'a, h.{0..2} and 2 more'
    """
    folded = fold_names(names)
    if len(folded) <= limit:
        return ", ".join(folded)
    return f"{', '.join(folded[:limit])} and {len(folded) - limit:,} more"


# What a log may carry but a terminal must not receive as it is: C0 and C1 controls but
# newline and tab (ESC starts terminal commands, CR overwrites the line, BEL rings), DEL,
# the bidirectional overrides and isolates and other invisible format characters
# (U+202E shows text reversed), line separators, and lone surrogates (unprintable).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f"
                     "\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    r"""``text`` with every control or invisible formatting character written as an
    escape (``\x1b``, ``\u202e``); newlines and tabs are kept.

    Logs are data from elsewhere: a module name or a site may carry terminal escapes
    (ESC, BEL, CR, a right-to-left override). Every verb prints log-provided text
    through this, at the print boundary, and the HTML pages show it so
    (:mod:`rngtrace.html`).

    >>> printable("blocks.0\x1b[2J\u202etxt.exe\nnext\tline")
    'blocks.0\\x1b[2J\\u202etxt.exe\nnext\tline'
    """
    return _UNSAFE.sub(_escape_char, text)
