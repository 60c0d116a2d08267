"""``rngtrace show``: a log's per-module table, then its draws one per line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..diffing import copied_streams, unused_consumers, unused_lines
from ..errors import UsageError
from ..html.showdata import matches, show_data
from ..log import PHASES, Draw, Event, Log
from ..summary import headline, summary_rows
from ..text import fold_numbered, plural
from . import OK, add_html, load_log, printable, stdout_may_close, write_html

HELP = "show a log: which module drew how many values, then each draw"
EXAMPLE = """examples:
  rngtrace show train.rngtrace.jsonl              the table, then the first 100 draws
  rngtrace show train.rngtrace.jsonl --by-module  the per-module table only
  rngtrace show run.jsonl --phase init            the draws made while models were built
  rngtrace show run.jsonl --module blocks.0 --limit 0
                                                  all draws of blocks.0 and its submodules
  rngtrace show run.jsonl --json --limit 0 > run.json   the same as JSON
  rngtrace show run.jsonl --html run.html         the same as a page (docs/html.md)

Listing columns: draw index; a flag ('-' the kernel drew nothing, 'd' the tensor drawn
into was later replaced); module (state_dict path, '(root)' for the model itself, '-'
outside modules); target (the parameter or buffer drawn into, relative to the module);
the aten op; the shape; the generator; the user code that made the call. A light-mode
log (--level module) lists module calls instead: module, phase, step, the offset the
call advanced a CUDA generator by (when there is one), generator and site. Text from
the log is printed with control characters escaped (\\x1b, \\u202e)."""

WIDTH = 100  # the listing fits a terminal this wide (--width; the terminal's own when one)
_PROBE = 2000  # column widths are taken from the first rows shown, then kept


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a log written by 'rngtrace run', "
                        "record(path=...) or Log.save")
    parser.add_argument("--by-module", action="store_true",
                        help="the per-module table only, no draw listing")
    parser.add_argument("--phase", choices=PHASES, help="only draws of this phase")
    parser.add_argument("--module", metavar="PATTERN",
                        help="only draws of modules (or targets) matching PATTERN: a name "
                             "also matches its submodules; * and ? are wildcards")
    parser.add_argument("--limit", type=int, default=100, metavar="N",
                        help="list at most N draws (default 100; 0 lists all)")
    parser.add_argument("--width", type=int, metavar="N",
                        help="fit the lines to N columns (default: the terminal's width, "
                             "100 when not a terminal); module paths are never cut")
    parser.add_argument("--json", action="store_true",
                        help="print the log as JSON (totals, per-module table, events and "
                             "the listed draws; --phase, --module and --limit apply)")
    add_html(parser)
    parser.add_argument("--no-fold", action="store_true",
                        help="one table row per module: do not fold identical numbered "
                             "blocks (layer.{0..11}.attn) into one row")


def run(args: argparse.Namespace) -> int:

    if args.limit < 0:
        raise UsageError(f"rngtrace show: --limit must be 0 or more, not {args.limit}")
    from .diff import report_width

    width = report_width(args.width) or 10**6  # 0: never fit
    args.width = max(width, 40)
    log = load_log(args.file)  # a log cut short by a crash: one warning, then what there is
    if args.html:
        write_html(log, args.html, label=os.path.basename(args.file))
        return OK
    if args.json:
        with stdout_may_close():
            json.dump(show_data(log, args.file, args.phase, args.module, args.limit),
                      sys.stdout, indent=1)
            sys.stdout.write("\n")
        return OK
    with stdout_may_close():
        for line in render(log, args):
            print(printable(line))
    return OK


def render(log: Log, args: argparse.Namespace) -> Iterator[str]:
    """The lines ``show`` prints: where the log comes from, the table, the listing."""
    width = getattr(args, "width", None) or WIDTH
    yield from describe(log, args.file, width)
    draws = [d for d in log.draws if matches(d, args.phase, args.module)]
    filters = [f"--{k.replace('_', '-')} {v}" for k, v in
               (("phase", args.phase), ("module", args.module)) if v is not None]
    shown = dataclasses.replace(log, draws=draws) if filters else log
    yield ""
    yield from table(shown, width=width, fold=not getattr(args, "no_fold", False))
    if filters:
        yield f"(only draws matching {' '.join(filters)})"
    yield from unused(log, width)
    yield from copied(log)
    yield from hazards(log, args.file)
    if args.by_module or not draws:
        return
    yield ""
    limit = args.limit or len(draws)
    yield from listing(draws[:limit], log.events, light=log.level == "module", width=width)
    if len(draws) > limit:
        noun = "records" if log.level == "module" else "draws"  # as the headline counts
        yield f"... {len(draws) - limit:,} more {noun} (--limit 0 lists them all)"


def unused(log: Log, width: int = WIDTH) -> Iterator[str]:
    """Modules and parameters that drew at init but were never used (the diff's section)."""
    found = unused_consumers(log)
    if found:
        yield ""
        yield "Unused consumers (drew at init, never used in the window):"
        for line in unused_lines(found):
            yield from _wrapped(line, width, "      ", break_long_words=True)


def copied(log: Log) -> Iterator[str]:
    """DataLoader workers that drew identical streams from a generator copied into them."""
    found = copied_streams(log)
    if found:
        yield ""
        yield "Workers with identical streams:"
        yield from (f"  {c.line()}" for c in found)


def hazards(log: Log, path: str) -> Iterator[str]:
    """When :func:`rngtrace.check` finds something in this log: how many findings of
    which kinds, and the command that explains them (two lines)."""
    import rngtrace

    if log.level != "op":
        return  # check reads op-level logs only
    report = rngtrace.check(log, labels=[path])
    if len(report):
        counts = ", ".join(plural(len(fs), word) for fs, word in (
            (report.errors, "error"), (report.warnings, "warning")) if fs)
        yield ""
        yield f"Hazards ({counts}): {', '.join(dict.fromkeys(f.kind for f in report))}"
        yield f"  rngtrace check {path} gives the evidence and the fix"


def describe(log: Log, path: str, width: int = WIDTH) -> Iterator[str]:
    """Two lines on where and how the log was recorded (from its header)."""
    meta: dict[str, Any] = log.meta
    yield f"{path}: rngtrace log" + (f", recorded {meta['time']}" if "time" in meta else "")
    made = ", ".join(f"{name} {meta[k]}" for k, name in
                     (("rngtrace", "rngtrace"), ("torch", "torch"), ("python", "Python"))
                     if k in meta)
    if made:
        where = f" on {meta['platform']}" if "platform" in meta else ""
        yield _clip(f"with {made}{where}", width)
    argv = meta.get("argv")
    if isinstance(argv, list) and argv:
        yield "command: " + _clip(" ".join(str(a) for a in argv), width - 9)
    dist = meta.get("dist")
    if isinstance(dist, dict) and "rank" in dist:
        job = ", ".join(f"{name} {dist[k]}" for k, name in (
            ("local_rank", "local rank"), ("backend", "backend"), ("host", "host"))
            if dist.get(k) is not None)
        yield _clip(f"rank {dist['rank']} of {dist.get('world_size', '?')}"
                    + (f" ({job})" if job else "") + " (rngtrace ranks compares them)", width)
    level = "" if log.level == "op" else f", level {log.level}"
    yield f"{plural(log.steps, 'optimizer step')}{level}"


def table(log: Log, max_events: int = 20, *, width: int = WIDTH, fold: bool = True
          ) -> Iterator[str]:
    """:func:`rngtrace.summary.summary` fitted to ``width`` columns: totals, modules, events. With
    ``fold``, rows of numbered blocks that drew alike are one row (see :func:`fold_rows`).
    Module paths are never cut (a cut path could read as another module)."""
    yield headline(log)
    if log.draws:
        yield ""
        rows: list[tuple[str, ...]] = list(summary_rows(log))
        folded = fold and len(rows) > 1 and len(rows) != len(rows := fold_rows(rows))
        names = max(len(r[0]) for r in rows)
        widths = _fit([max(len(r[i]) for r in rows) for i in range(6)],
                      {0: names, 1: 8, 4: 10, 5: 11}, width)
        if all(r[3] == "-" for r in rows[1:]):  # a light log's offsets, on CPU: none
            widths[3] = 0
        for r in rows:
            cells = [_cut(c, w, 2 if i == 0 else 4) for i, (c, w) in
                     enumerate(zip(r, widths, strict=True))]
            yield "  ".join(c.rjust(w) if i in (2, 3) else c.ljust(w)
                            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                            if w).rstrip()
        if folded:
            yield ("({a..b}: numbered blocks that drew alike, one row; the counts are each "
                   "block's; --no-fold lists them)")
    for e in log.events[:max_events]:
        yield from _wrapped(e.line(), width, "    ")
    if len(log.events) > max_events:
        yield f"... {len(log.events) - max_events:,} more events"


def listing(draws: list[Draw], events: Iterable[Event], light: bool = False,
            width: int = WIDTH) -> Iterator[str]:
    """One line per draw, fitted to ``width`` columns; events where they happened.
    Module and target paths are never cut: a line with a longer one runs over.

    A light log's records (``light``) have no target, op or shape: their columns are
    phase, step and the offset a CUDA generator advanced by (left out when none did).
    """
    head: tuple[str, ...] = (
        ("#", "", "module", "phase", "step", "offset", "generator", "site") if light else
        ("#", "", "module", "target", "op", "shape", "generator", "site"))
    rows = ((_light_row if light else _row)(d) for d in draws)
    probe = [head]
    for r in rows:
        probe.append(r)
        if len(probe) > _PROBE:
            break
    widths = [max(len(r[i]) for r in probe) for i in range(len(head))]
    widths = _fit(widths, {**_LEAST, 2: widths[2], 3: widths[3]}, width)
    if light and not any(r[5] for r in probe[1:]):
        widths[5] = 0
    pending = sorted(events, key=lambda e: e.before)
    k = 0
    flags = set()
    for n, r in enumerate(_chain(probe, rows)):
        index = int(r[0]) if n else -1
        while n and k < len(pending) and pending[k].before <= index:
            e = pending[k]
            k += 1
            yield from _wrapped(f"  -- {e.kind} on {e.generator}"
                                + (f" at {e.site}" if e.site else "")
                                + (f": {e.detail}" if e.detail else ""), width, "       ")
        flags.add(r[1])
        cells = [_cut(c, w, i) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        cells[0] = cells[0].rjust(widths[0])
        yield "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True) if w).rstrip()
    legend = [t for f, t in (("-", "'-': drew nothing"), ("d", "'d': discarded later"))
              if f in flags]
    if legend:
        yield "(" + "; ".join(legend) + ")"


def _chain(first: list[tuple[str, ...]], rest: Iterator[tuple[str, ...]]
           ) -> Iterator[tuple[str, ...]]:
    yield from first
    yield from rest


def _row(d: Draw) -> tuple[str, ...]:
    target = d.target or ""
    if d.module and target.startswith(d.module + "."):
        target = target[len(d.module) + 1:]
    flag = "d" if d.discarded else ("" if d.consumed else "-")
    shape = "x".join(str(s) for s in d.shape) if d.shape else "()"
    return (str(d.index), flag, d.where, target, d.op.removeprefix("aten::"), shape,
            d.generator, d.site or "")


def _light_row(d: Draw) -> tuple[str, ...]:
    return (str(d.index), "", d.where, d.phase, str(d.step), f"{d.numel:,}" if d.numel else "",
            d.generator, d.site or "")


# the narrowest each listing column may become: module, target, op, shape, generator, site
_LEAST = {2: 16, 3: 6, 4: 14, 5: 11, 6: 11, 7: 20}


def _fit(widths: list[int], least: dict[int, int] | None = None, width: int = WIDTH
         ) -> list[int]:
    """Narrow the widest columns until the line fits ``width`` (two spaces between).
    When it cannot fit even with every column at its least (a module path longer than
    the line), nothing is narrowed: the line runs over, but whole."""
    least = _LEAST if least is None else least
    widths = list(widths)
    over = sum(widths) + 2 * (sum(1 for w in widths if w) - 1) - width
    if over - sum(max(widths[c] - n, 0) for c, n in least.items()) > 0:
        return widths
    while over > 0:
        col = max(least, key=lambda c: widths[c] - least[c])
        if widths[col] <= least[col]:
            break
        widths[col] -= 1
        over -= 1
    return widths


def _cut(text: str, width: int, col: int) -> str:
    """Shorten to ``width``: keep the end of sites, the start of the rest; module and
    target paths (columns 2 and 3) are never cut, they run over instead."""
    if len(text) <= width or col in (2, 3):
        return text
    if col == 7:
        return "..." + text[len(text) - width + 3:]
    return text[:width - 3] + "..."


def fold_rows(rows: Sequence[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The table's rows (header first) with numbered blocks folded: rows whose module
    paths differ only in their first number and whose other cells are equal (three or
    more) become one row named ``layer.{0..11}.attn`` (or ``{0,2,5}``; ``layer.*.attn``
    for more than eight scattered numbers), where the first of them stood
    (:func:`rngtrace.text.fold_numbered`).

    >>> rows = [("module", "type", "draws"), ("emb", "Embedding", "1"),
    ...         ("h.0.mlp", "Linear", "2"), ("h.1.mlp", "Linear", "2"),
    ...         ("h.2.mlp", "Linear", "2"), ("h.3.mlp", "Linear", "4")]
    >>> [r[0] for r in fold_rows(rows)]
    ['module', 'emb', 'h.{0..2}.mlp', 'h.3.mlp']
    """
    body = rows[1:]
    folded = fold_numbered([r[0] for r in body], [r[1:] for r in body])
    return [rows[0], *((name, *body[i][1:]) for i, name in folded)]


def _wrapped(text: str, width: int, indent: str, break_long_words: bool = False
             ) -> list[str]:
    """A line wrapped to ``width``, never at a hyphen. An event's words are never cut (its
    detail may name the modules concerned); ``break_long_words`` cuts a word longer than
    the line (an unused consumer's)."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False,
                         break_long_words=break_long_words) or [""]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."
