"""``rngtrace check``: RNG hazards found in one run, without a second run to compare."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import DIFFERENT, OK, add_html, load_log, printable, stdout_may_close, write_html

HELP = "find RNG hazards in one run: repeated streams, rank mistakes, recomputes, workers"
EXAMPLE = """examples:
  rngtrace check train.rngtrace.jsonl
  rngtrace check train.rank*.rngtrace.jsonl          # the ranks of one job, together
  rngtrace check --json train.rngtrace.jsonl > findings.json
  rngtrace check train.rngtrace.jsonl --html findings.html

Each finding names its kind, the generators, the modules, parameters or sites, the
draws it rests on (index and generator state), why it matters and the fix: repeated
streams (a generator rewound: equal masks or layers), what the ranks of a job must draw
alike or apart (replicas, shards, data-parallel masks and noise, pipeline stages), an
activation checkpoint's recompute drawing other values than its forward (eager and
compiled), DataLoader workers with identical streams, stray draws between the seeding
and the first training step, generators that draw unseeded. See docs/check.md. Exit
code: 0 nothing found, 1 something found, 2 error."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOG",
                        help="one log, or one per rank of a job (ranks read from headers)")
    parser.add_argument("--json", action="store_true",
                        help="print the findings as JSON (CheckReport.to_dict())")
    add_html(parser)


def run(args: argparse.Namespace) -> int:
    import rngtrace

    logs = [load_log(p) for p in args.logs]
    report = rngtrace.check(logs, labels=[os.path.basename(p) for p in args.logs])
    if args.html:
        by_label = dict(zip([os.path.basename(p) for p in args.logs], logs, strict=True))
        write_html(report, args.html, logs=[by_label[x] for x in report.logs
                                            if x in by_label])
        return DIFFERENT if len(report) else OK
    with stdout_may_close():
        if args.json:
            json.dump(report.to_dict(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(printable(str(report)))
    return DIFFERENT if len(report) else OK
