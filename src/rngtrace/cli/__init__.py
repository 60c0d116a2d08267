"""The ``rngtrace`` command line: a table of verbs, each in its own module.

Each verb module defines ``HELP`` (one line), ``EXAMPLE`` (shown by ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``, and uses only the public API.
Exit codes: 0 same/success, 1 different, 2 error (bad input or command line).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import RngtraceError

if TYPE_CHECKING:
    from ..log import Log

OK, DIFFERENT, ERROR = 0, 1, 2

# verb -> module under rngtrace.cli, in the order --help lists them
VERBS: dict[str, str] = {
    "run": "run",
    "show": "show",
    "diff": "diff",
    "compare": "compare",
    "dot": "dot",
    "ranks": "ranks",
}


class UsageError(RngtraceError):
    """The command line is wrong."""


def load_log(path: str) -> Log:
    """``rngtrace.load``, with a cut-short file's warning printed as one line: the verbs
    say so and go on with what there is."""
    import rngtrace

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = rngtrace.load(path)
    for w in caught:
        print(f"rngtrace: warning: {w.message}", file=sys.stderr)
    return log


def run_labels(a: str, b: str) -> tuple[str, str]:
    """Short names for two files: their base names, or the paths when those agree."""
    na, nb = os.path.basename(a), os.path.basename(b)
    if na == nb:
        na, nb = os.path.normpath(a), os.path.normpath(b)
    return (na, nb) if na != nb else ("A", "B")


@contextmanager
def stdout_may_close() -> Iterator[None]:
    """Print inside this: ``rngtrace show ... | head`` closing the pipe stops quietly."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rngtrace",
        description="Record, show and compare the random draws of PyTorch programs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"rngtrace {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb, modname in VERBS.items():
        mod = importlib.import_module(f"{__name__}.{modname}")
        p = sub.add_parser(
            verb, help=mod.HELP, description=mod.HELP, epilog=mod.EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        if args.verb is None:
            parser.print_help()
            return ERROR
        return int(args._run(args))
    except RngtraceError as e:
        print(f"rngtrace: error: {e}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("rngtrace: interrupted", file=sys.stderr)
        return 130
