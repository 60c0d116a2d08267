"""The ``rngtrace`` command line: a table of verbs, each in its own module.

Each verb module defines ``HELP`` (one line), ``EXAMPLE`` (shown by ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``, and uses only the public API.
Exit codes: 0 same/success, 1 different, 2 error (bad input or command line).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import RngtraceError

OK, DIFFERENT, ERROR = 0, 1, 2

# verb -> module under rngtrace.cli, in the order --help lists them
VERBS: dict[str, str] = {
    "run": "run",
    "show": "show",
    "diff": "diff",
    "compare": "compare",
    "dot": "dot",
}


class UsageError(RngtraceError):
    """The command line is wrong."""


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
