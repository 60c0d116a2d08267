"""The ``rngtrace`` command line: a table of verbs, each in its own module.

Each verb module defines ``HELP`` (one line), ``EXAMPLE`` (shown by ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``, and uses only the public API.
Exit codes: 0 same/success, 1 different, 2 error (bad input or command line).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import RngtraceError, UsageError
from ..text import printable

if TYPE_CHECKING:
    from ..log import Log

OK, DIFFERENT, ERROR = 0, 1, 2

# verb -> module under rngtrace.cli, in the order --help lists them
VERBS: dict[str, str] = {
    "run": "run",
    "show": "show",
    "diff": "diff",
    "compare": "compare",
    "bisect": "bisect",
    "dot": "dot",
    "ranks": "ranks",
    "check": "check",
}


def load_log(path: str) -> Log:
    """``rngtrace.load``, with a cut-short file's warning printed as one line: the verbs
    say so and go on with what there is."""
    import rngtrace

    from .progress import progress

    with warnings.catch_warnings(record=True) as caught, progress(f"loading {path}"):
        warnings.simplefilter("always")
        log = rngtrace.load(path)
    for w in caught:
        print(f"rngtrace: warning: {printable(str(w.message))}", file=sys.stderr)
    return log


def add_html(parser: argparse.ArgumentParser) -> None:
    """``--html FILE``, for the verbs whose report has a page."""
    parser.add_argument("--html", metavar="FILE",
                        help="write the report as one self-contained HTML page to FILE "
                             "(instead of the text; see docs/html.md)")


def write_html(obj: Any, path: str, **options: Any) -> None:
    """Write the page of ``obj`` (:func:`rngtrace.html.save`), with progress on a
    terminal, and say where."""
    from ..html import save
    from .progress import progress

    with progress(f"writing {path}"):
        save(obj, path, **options)
    print(f"rngtrace: wrote {printable(path)}")


def run_labels(a: str, b: str, labels: Sequence[str] | None = None) -> tuple[str, str]:
    """Short names for two files: ``labels`` if given (``--labels``), else their base
    names (without ``.rngtrace.jsonl``), or the paths when those agree, or (the same
    file twice) its name marked ``(A)`` and ``(B)``.

    >>> run_labels("x/run.rngtrace.jsonl", "y/run.rngtrace.jsonl")
    ('x/run.rngtrace.jsonl', 'y/run.rngtrace.jsonl')
    >>> run_labels("run.rngtrace.jsonl", "./run.rngtrace.jsonl")
    ('run (A)', 'run (B)')
    """
    if labels:
        return labels[0], labels[1]
    na, nb = (os.path.basename(p).removesuffix(".rngtrace.jsonl") or p for p in (a, b))
    if na != nb:
        return na, nb
    pa, pb = os.path.normpath(a), os.path.normpath(b)
    return (pa, pb) if pa != pb else (f"{na} (A)", f"{nb} (B)")


def quiet_torch_import() -> None:
    """Import torch without its "Failed to initialize NumPy" warning (torch prints it
    when NumPy is missing, which rngtrace does not need); later imports are free."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch  # noqa: F401


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

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        # an unknown option is the verb's to report, with its help and a near name
        ns, extra = super().parse_known_args(args, namespace)
        if extra and self.prog != "rngtrace":
            self.error(_unknown(self, extra))
        return ns, extra


def _unknown(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """"unrecognized arguments", with a near option name, or (for the verbs that run a
    program) the reminder that the program's own options go after it."""
    flag = next((x.partition("=")[0] for x in extra if x.startswith("-")), None)
    words = f"unrecognized arguments: {' '.join(extra)}"
    if flag is None:
        return words
    names = [o for o in parser._option_string_actions if o not in ("-h", "--help")]
    near = difflib.get_close_matches(flag, names, n=1, cutoff=0.7)
    if near:
        return f"{words} (did you mean {near[0]}?)"
    if any(a.nargs == argparse.REMAINDER for a in parser._actions):
        return f"{words} ({program_hint(parser.prog, flag)})"
    return words


def program_hint(prog: str, flag: str) -> str:
    """The reminder for an unknown option before PROGRAM."""
    return f"the program's own options go after PROGRAM: {prog} [OPTIONS] PROGRAM {flag} ..."


def _check_verb(argv: list[str]) -> None:
    """An unknown verb: say so, with the nearest verb (``shwo`` -> ``show``)."""
    if not argv or argv[0].startswith("-") or argv[0] in VERBS:
        return
    near = difflib.get_close_matches(argv[0], list(VERBS), n=1, cutoff=0.6)
    hint = f"did you mean '{near[0]}'?" if near else f"the verbs: {', '.join(VERBS)};"
    raise UsageError(f"rngtrace: unknown verb {argv[0]!r} ({hint} see 'rngtrace --help')")


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
        _check_verb(args_list)
        parser = build_parser()
        args = parser.parse_args(args_list)
        if args.verb is None:
            parser.print_help()
            return ERROR
        return int(args._run(args))
    except RngtraceError as e:
        print(f"rngtrace: error: {printable(str(e))}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("rngtrace: interrupted", file=sys.stderr)
        return 130
