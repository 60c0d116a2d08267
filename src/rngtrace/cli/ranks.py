"""``rngtrace ranks``: do the ranks of one job draw the same values where they should?"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import UsageError
from . import DIFFERENT, OK, add_html, load_log, stdout_may_close, write_html

HELP = "compare the logs of a job's ranks: which parameters, masks and samplers differ"
EXAMPLE = """examples:
  torchrun --nproc-per-node 2 -m rngtrace run train.py   # train.rank0/1.rngtrace.jsonl
  rngtrace ranks train.rank*.rngtrace.jsonl
  rngtrace ranks --json train.rank*.rngtrace.jsonl > ranks.json
  rngtrace ranks train.rank*.rngtrace.jsonl --html ranks.html

Per parameter drawn at init: do all ranks draw the same values (same ops, arguments,
local shapes and generator states), or which ranks differ and why (another seed per
rank, extra draws on one rank, a reseed on one rank); then per module drawing in
forward (dropout masks) and per sampler permutation. Each relation is judged for the
parallelism seen: replicated parameters that differ are a bug unless DDP broadcasts
them; sharded (DTensor, FSDP2) parameters with equal shards are a bug. Each log must
come from a torch.distributed job (its header names its rank): two ordinary logs are
refused. Exit code: 0 when every parameter's initial draws agree across ranks, 1 when
some differ, 2 error."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOG",
                        help="one log per rank (the rank is read from each header)")
    parser.add_argument("--json", action="store_true",
                        help="print the comparison as JSON (RankReport.to_dict())")
    add_html(parser)


def run(args: argparse.Namespace) -> int:
    import rngtrace

    if len(args.logs) < 2:
        raise UsageError("rngtrace ranks: give the logs of 2 ranks or more")
    logs = [load_log(p) for p in args.logs]
    for path, log in zip(args.logs, logs, strict=True):
        dist = log.meta.get("dist")
        if not isinstance(dist, dict) or "rank" not in dist:
            raise UsageError(
                f"rngtrace ranks: {path} carries no rank information (meta['dist']): it "
                "was not recorded in a torch.distributed job; record one log per rank "
                "with 'torchrun --nproc-per-node N -m rngtrace run train.py' (or "
                "record(path=...) in each process of the job)")
    labels = [os.path.basename(p) for p in args.logs]
    report = rngtrace.compare_ranks(logs, labels=labels)
    if args.html:
        by_label = dict(zip(labels, logs, strict=True))  # the report lists them by rank
        write_html(report, args.html, logs=[by_label[r.label] for r in report.ranks
                                            if r.label in by_label])
        return OK if report.same else DIFFERENT
    with stdout_may_close():
        if args.json:
            json.dump(report.to_dict(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(report)
    return OK if report.same else DIFFERENT
