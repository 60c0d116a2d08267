"""A log's draws as a compact table for a page: each kind of draw once, then one small
integer per draw.

Most draws of a run repeat a few shapes: the same dropout in the same module at the
same line, step after step. :func:`draw_table` keeps each distinct draw (op, module,
target, shape, generator, phase, site, code, arguments...: its *signature*) once, in a
list of signatures whose texts are indices into a shared string table, and gives each
draw only its signature's number; the optimizer step, which climbs, is kept as the
positions where it changes. A million draws of a training run take a few megabytes.
The page's script rebuilds any row from that on demand.

Logs longer than ``max_rows`` keep the first ``per_node`` draws of every module (and
any draw asked for by ``keep``), so every module still shows its draws; the table
then says which indices it holds (``idx``, as ``[first, count]`` runs).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from ..log import Draw, Log

MAX_ROWS = 2_000_000  # draws a page holds in full; past that, the first PER_NODE per module
PER_NODE = 200

# what a signature holds, in order (the page's script reads them by these positions)
SIG_FIELDS = ("op", "module", "type", "target", "shape", "generator", "phase", "site",
              "code", "args", "api", "numel", "flags", "node", "worker", "dtype")
# flags: bit 0 drew nothing, 1 discarded later, 2 copied, 3 replayed from a saved state
_NOTHING, _DISCARDED, _COPIED, _REPLAY = 1, 2, 4, 8


class Strings:
    """A table of distinct strings, each given once; None is ``-1``."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._ids: dict[str, int] = {}

    def __call__(self, text: str | None) -> int:
        if text is None:
            return -1
        n = self._ids.get(text)
        if n is None:
            n = self._ids[text] = len(self.items)
            self.items.append(text)
        return n


def shape_text(shape: Sequence[int]) -> str:
    """``8x64x768`` (``()`` for a scalar), as ``rngtrace show`` lists shapes."""
    return "x".join(str(s) for s in shape) if shape else "()"


def args_text(args: dict[str, Any]) -> str:
    """A draw's scalar arguments in one line, floats to 6 significant digits.

    >>> args_text({"from": -0.35355339059327373, "to": 0.35355339059327373, "p": 0.1})
    'from=-0.353553 to=0.353553 p=0.1'
    """
    return " ".join(f"{k}={v:.6g}" if type(v) is float else f"{k}={v}"
                    for k, v in args.items())


def runs(indices: Iterable[int]) -> list[list[int]]:
    """Ascending indices as ``[first, count]`` runs of consecutive numbers.

    >>> runs([0, 1, 2, 7, 9, 10])
    [[0, 3], [7, 1], [9, 2]]
    """
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][0] + out[-1][1] == i:
            out[-1][1] += 1
        else:
            out.append([i, 1])
    return out


def _signature(d: Draw, s: Strings, node: int) -> list[int]:
    flags = ((0 if d.consumed else _NOTHING) | (_DISCARDED if d.discarded else 0)
             | (_COPIED if d.copied else 0) | (_REPLAY if d.replay else 0))
    return [s(d.op), s(d.module), s(d.module_type), s(d.target), s(shape_text(d.shape)),
            s(d.generator), s(d.phase), s(d.site), s(d.code), s(args_text(d.args)),
            s(d.api), d.numel, flags, node, -1 if d.worker is None else d.worker,
            s(d.dtype)]


def chosen(log: Log, node_of: Callable[[Draw], int], max_rows: int = MAX_ROWS,
           per_node: int = PER_NODE, keep: Collection[int] = ()) -> list[Draw]:
    """The draws a page holds: all of them up to ``max_rows``, else the first
    ``per_node`` of each module and those whose index is in ``keep``."""
    if len(log.draws) <= max_rows:
        return log.draws
    seen: dict[int, int] = {}
    out = []
    for d in log.draws:
        n = node_of(d)
        k = seen.get(n, 0)
        if k < per_node or d.index in keep:
            seen[n] = k + 1
            out.append(d)
    return out


def draw_table(log: Log, label: str, strings: Strings, node_of: Callable[[Draw], int],
               draws: Sequence[Draw] | None = None) -> dict[str, Any]:
    """The table of ``draws`` (default: all of ``log``'s) for the page's script: ``sigs``
    (one list of :data:`SIG_FIELDS` per signature), ``sig`` (each row's signature),
    ``step`` (``[row, step]`` where the step changes), ``idx`` (the rows' draw indices
    as runs; None when the rows are every draw, row = index), ``n`` (the log's draws).
    """
    rows = log.draws if draws is None else draws
    keys: dict[tuple[Any, ...], int] = {}
    sigs: list[list[int]] = []
    sig: list[int] = []
    steps: list[list[int]] = []
    step = None
    texts: dict[int, str] = {}  # a loaded log shares one args dict between equal ones
    for r, d in enumerate(rows):
        args = texts.get(id(d.args))
        if args is None:
            args = texts[id(d.args)] = args_text(d.args)
        key = (d.op, d.model, d.module, d.module_type, d.target, d.shape, d.generator,
               d.phase, d.site, d.code, args, d.api, d.numel, d.consumed,
               d.discarded, d.copied, d.replay, d.worker, d.dtype)
        n = keys.get(key)
        if n is None:
            n = keys[key] = len(sigs)
            sigs.append(_signature(d, strings, node_of(d)))
        sig.append(n)
        if d.step != step:
            step = d.step
            steps.append([r, step])
    every = len(rows) == len(log.draws) and (not rows or rows[-1].index == len(rows) - 1)
    return {"label": label, "n": len(log.draws), "sigs": sigs, "sig": sig, "step": steps,
            "idx": None if every else runs(d.index for d in rows)}
