"""``rngtrace diff``: why two recorded runs draw different random numbers."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from typing import TYPE_CHECKING

from ..diffing import copied_streams
from ..errors import UsageError
from . import (
    DIFFERENT,
    OK,
    add_html,
    load_log,
    printable,
    run_labels,
    stdout_may_close,
    write_html,
)
from .progress import progress

if TYPE_CHECKING:
    from ..diffing import Diff, ResumeDiff

HELP = "compare two logs: where the random streams part, why, and what it shifts"
EXAMPLE = """examples:
  rngtrace diff old.rngtrace.jsonl new.rngtrace.jsonl
  rngtrace diff --json a.jsonl b.jsonl > diff.json
  rngtrace diff a.jsonl b.jsonl --html diff.html     a page: both streams side by side
  rngtrace diff full.jsonl resumed.jsonl --resumed-at 100

The report names the cause first (a module or parameter inserted or removed, definitions
reordered, shapes or arguments changed, another seed, a reseed inside one run, another
generator), with its module, its line of code and what it shifts, then each generator
stream, the parameters that start from other values, the modules that drew but were
never used, and the aligned hunks. With --resumed-at K, B is A resumed from a checkpoint
saved after optimizer step K: B's construction and loading are skipped, its training is
compared with A's from step K, and every generator B did not restore is named. DataLoader
workers that drew identical streams from a copied generator are flagged. Exit code: 0
identical (or differing only by streams one run adds, drawn into what only it has, which
move nothing both runs have), 1 different, 2 error."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="the first log (the reference)")
    parser.add_argument("b", metavar="B", help="the second log")
    parser.add_argument("--json", action="store_true",
                        help="print the comparison as JSON (Diff.to_dict()) instead of text")
    parser.add_argument("--resumed-at", type=int, metavar="K",
                        help="B was resumed from a checkpoint saved after A's optimizer "
                             "step K: check it draws what A drew from there")
    parser.add_argument("--width", type=int, metavar="N",
                        help="wrap the report to N columns (0: never; default: the "
                             "terminal's width, 100 when not a terminal)")
    add_labels(parser)
    add_html(parser)


def add_labels(parser: argparse.ArgumentParser) -> None:
    """``--labels A B``, for the verbs that compare two logs."""
    parser.add_argument("--labels", nargs=2, metavar=("LABEL_A", "LABEL_B"),
                        help="what to call the two runs in the output (default: the "
                             "files' names)")


def run(args: argparse.Namespace) -> int:
    import rngtrace

    a = load_log(args.a)
    b = load_log(args.b)
    labels = run_labels(args.a, args.b, args.labels)
    if args.resumed_at is not None:
        if args.resumed_at < 0:
            raise UsageError(f"rngtrace diff: --resumed-at must be 0 or more, not "
                             f"{args.resumed_at}")
        with progress("comparing the logs"):
            r = rngtrace.diff(a, b, labels=labels, resumed_at=args.resumed_at)
        if args.html:
            write_html(r, args.html)
        else:
            emit(r, args.json)
        return OK if r.identical else DIFFERENT
    with progress("comparing the logs"):
        d = rngtrace.diff(a, b, labels=labels)
    if args.html:
        write_html(d, args.html)
        return OK if d.agrees else DIFFERENT
    emit(d, args.json, width=report_width(args.width))
    if not args.json:
        with stdout_may_close():
            for label, log in zip(labels, (a, b), strict=True):
                for c in copied_streams(log):
                    print(printable(f"{label}: {c.line()}"))
    return OK if d.agrees else DIFFERENT


def report_width(asked: int | None) -> int:
    """The width to wrap a report to: ``asked``, else the terminal's, else 100."""
    if asked is not None:
        if asked < 0:
            raise UsageError(f"rngtrace diff: --width must be 0 or more, not {asked}")
        return asked
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return 100


def emit(d: Diff | ResumeDiff, as_json: bool, width: int | None = None) -> None:
    """Print a diff as the verbs do: its report (wrapped to ``width`` when given), or
    its JSON."""
    with stdout_may_close():
        if as_json:
            json.dump(d.to_dict(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        elif width is not None and not hasattr(d, "resumed_at"):
            print(printable(cli_spelling(d.report(width=width))))
        else:
            print(printable(cli_spelling(d.report())))


# The library's hints are spelled for Python; printed by the CLI, in the CLI's spelling
# (the same length, so that a wrapped report stays wrapped).
_SPELLING = [(re.compile(r"(record\s+with\s+)level='op'"), r"\1--level op")]


def cli_spelling(text: str) -> str:
    r"""Hints in a report as the command line spells them.

    >>> cli_spelling("record with\nlevel='op' to name it")
    'record with\n--level op to name it'
    """
    for python, cli in _SPELLING:
        text = python.sub(cli, text)
    return text
