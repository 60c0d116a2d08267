"""``rngtrace dot``: a log, or the diff of two logs, as a Graphviz picture."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError
from . import OK, load_log, printable, run_labels
from .diff import add_labels

HELP = "draw a log, or the diff of two logs, as a picture (DOT, SVG, PNG, PDF)"
EXAMPLE = """examples:
  rngtrace dot run.rngtrace.jsonl -o run.svg           the modules and the order they drew
  rngtrace dot a.rngtrace.jsonl b.rngtrace.jsonl -o diff.svg   what moved between two runs
  rngtrace dot a.jsonl b.jsonl --labels old new -o diff.svg    name the two runs
  rngtrace dot big.rngtrace.jsonl -o big.png --depth 2  fold modules deeper than 2 levels
  rngtrace dot run.rngtrace.jsonl -o -                  DOT source on stdout
  rngtrace dot train.rank*.rngtrace.jsonl -o ranks.svg   a job's ranks side by side

The format follows the extension of -o: .dot/.gv (DOT source, no Graphviz needed),
.svg, .png, .pdf (these need Graphviz's 'dot' program). Without it the DOT source is
written next to the requested file (out.svg -> out.dot; never over a .dot file that
rngtrace did not draw), a one-line message says how to install Graphviz, and the exit
code is 2, since the requested file was not written. An output that is one of the
inputs, an rngtrace log or a file of another kind is refused.
Three logs or more (or two with --ranks) are the ranks of one job: drawn side by side,
one column per rank, as 'rngtrace ranks' compares them. Numbered siblings with the same
draws (h.0 ... h.11) are drawn once unless --no-collapse is given. The exit code is 0
when the picture was written, also for a diff of two runs that differ (use 'rngtrace
diff' to test for differences)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a log file (its picture), or two (the picture of their diff)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="where to write: .dot, .gv, .svg, .png or .pdf; - for DOT on stdout")
    parser.add_argument("--depth", type=int, default=None, metavar="N",
                        help="show modules at most N levels below the model (0: the model)")
    parser.add_argument("--no-collapse", action="store_true",
                        help="draw every numbered sibling, even identical ones")
    parser.add_argument("--ranks", action="store_true",
                        help="the logs are the ranks of one job: draw them side by side "
                             "(the default for three logs or more)")
    add_labels(parser)


def run(args: argparse.Namespace) -> int:
    import rngtrace
    from rngtrace import diff, graph

    ranks = args.ranks or len(args.files) > 2
    if ranks and len(args.files) < 2:
        raise UsageError("rngtrace dot: --ranks takes the logs of 2 ranks or more")
    if args.labels and (ranks or len(args.files) != 2):
        raise UsageError("rngtrace dot: --labels names the two runs of a diff: give two logs")
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"rngtrace dot: --depth must be 0 or more, not {args.depth}")
    ext = args.output.rpartition(".")[2].lower()
    if args.output != "-" and ext not in graph.FORMATS:
        raise UsageError(f"rngtrace dot: -o {args.output}: the extension must be one of "
                         + ", ".join("." + f for f in graph.FORMATS))
    for path in args.files:
        if args.output != "-" and _same_file(path, args.output):
            raise UsageError(f"rngtrace dot: -o {args.output} is also an input; "
                             "choose another output")
    logs = [load_log(path) for path in args.files]
    obj: rngtrace.Log | rngtrace.Diff | rngtrace.RankReport
    if ranks:
        obj = rngtrace.compare_ranks(logs, labels=[os.path.basename(p) for p in args.files])
    else:
        obj = logs[0] if len(logs) == 1 else diff(logs[0], logs[1],
                                                  labels=run_labels(args.files[0],
                                                                    args.files[1],
                                                                    args.labels))
    collapse = not args.no_collapse
    if args.output == "-":
        sys.stdout.write(printable(rngtrace.to_dot(obj, args.depth, collapse=collapse)))
        return OK
    path = graph.save(obj, args.output, args.depth, collapse=collapse)
    print(f"rngtrace: wrote {path}")
    return OK


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return os.path.abspath(a) == os.path.abspath(b)
