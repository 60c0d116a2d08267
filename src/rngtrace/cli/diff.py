"""``rngtrace diff``: why two recorded runs draw different random numbers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from . import DIFFERENT, OK, load_log, run_labels, stdout_may_close

if TYPE_CHECKING:
    from ..diffing import Diff

HELP = "compare two logs: where the random streams part, why, and what it shifts"
EXAMPLE = """examples:
  rngtrace diff old.rngtrace.jsonl new.rngtrace.jsonl
  rngtrace diff --json a.jsonl b.jsonl > diff.json

The report names the cause first (a module or parameter inserted or removed, definitions
reordered, shapes or arguments changed, another seed, a reseed inside one run, another
generator), with its module, its line of code and what it shifts, then each generator
stream, the parameters that start from other values, the modules that drew but were
never used, and the aligned hunks. Exit code: 0 identical, 1 different, 2 error."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A", help="the first log (the reference)")
    parser.add_argument("b", metavar="B", help="the second log")
    parser.add_argument("--json", action="store_true",
                        help="print the comparison as JSON (Diff.to_dict()) instead of text")


def run(args: argparse.Namespace) -> int:
    import rngtrace

    a = load_log(args.a)
    b = load_log(args.b)
    d = rngtrace.diff(a, b, labels=run_labels(args.a, args.b))
    emit(d, args.json)
    return OK if d.identical else DIFFERENT


def emit(d: Diff, as_json: bool) -> None:
    """Print a diff as the verbs do: its report, or its JSON."""
    with stdout_may_close():
        if as_json:
            json.dump(d.to_dict(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(d.report())
