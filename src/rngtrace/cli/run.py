"""``rngtrace run``: run a Python program as ``python`` would, recording its random draws."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from . import UsageError

HELP = "run a Python program and record its random draws to a log file"
EXAMPLE = """examples:
  rngtrace run train.py --lr 0.1              record the whole run: train.rngtrace.jsonl
  rngtrace run --steps 10 -o a.jsonl train.py   stop recording after 10 optimizer steps
  rngtrace run -m mypkg.train --epochs 1      run a module, as 'python -m' would
  rngtrace run --level module train.py        the light mode, for a whole training

rngtrace's options go before the program; everything after it is the program's own
command line. The program runs as 'python PROGRAM ARGS' would run it (its sys.argv,
__name__ == "__main__", sys.path[0]). The log is written as the program runs, so it
survives a crash; where it went is printed on stderr. The exit code is the program's:
1 with its traceback if it raised, 2 if rngtrace could not start it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the log file (default: PROGRAM's name + .rngtrace.jsonl, "
                             "in the current directory)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="stop recording after N optimizer steps (the program goes on "
                             "at full speed)")
    parser.add_argument("--level", choices=("op", "module"), default="op",
                        help="'op' (default): every random kernel call; 'module': the "
                             "light mode, which module consumed, cheap enough for a whole "
                             "training")
    parser.add_argument("--no-python-rng", dest="python_rng", action="store_false",
                        help="do not record draws from Python's random and NumPy (recorded "
                             "by default at --level op, DataLoader workers included)")
    parser.add_argument("-m", dest="module", action="store_true",
                        help="PROGRAM is a module name, run as 'python -m' would")
    # One REMAINDER for the program and its arguments: with two positionals argparse
    # would swallow a '--' meant for the program (python keeps it in sys.argv).
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="PROGRAM [ARGS ...]",
                        help="a script (or, with -m, a module) and its own arguments")


def default_output(program: str, module: bool) -> str:
    """``train.py`` -> ``train.rngtrace.jsonl``; ``pkg.train`` (with -m) the same."""
    if module:
        stem = program.rsplit(".", 1)[-1]
    else:
        stem = os.path.splitext(os.path.basename(os.path.normpath(program)))[0]
    return f"{stem or 'program'}.rngtrace.jsonl"


def run(args: argparse.Namespace) -> int:
    import rngtrace

    command = list(args.command)
    if command[:1] == ["--"]:  # 'rngtrace run -o x -- train.py': the '--' is rngtrace's
        command = command[1:]
    if not command:
        raise UsageError("rngtrace run: which program? (see 'rngtrace run --help')")
    program, program_args = command[0], command[1:]
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"rngtrace run: --steps must be 1 or more, not {args.steps}")
    runner, argv0, path0 = _runner(program, args.module)
    output = args.output or default_output(program, args.module)
    window = rngtrace.record(args.steps, path=output, level=args.level,
                             python_rng=args.python_rng)  # bad -o: exit 2
    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [argv0, *program_args]  # also what the log's header records
    sys.path[0:1] = [path0]
    code = 0
    try:
        with window:
            try:
                runner()
            except SystemExit as e:  # the program chose to exit: a complete recording
                code = _exit_code(e)
    except KeyboardInterrupt as e:
        _print_traceback(e)
        code = 130
    except Exception as e:  # the program's own error: its traceback, as python prints it
        _print_traceback(e)
        code = 1
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0:1] = [saved_path0]
    log = window.log
    _report(log.meta, log.complete, log.steps, len(log.generators))
    return code


def _runner(program: str, module: bool) -> tuple[Callable[[], object], str, str]:
    """What to call, and the ``sys.argv[0]`` and ``sys.path[0]`` python would give."""
    if module:
        import importlib.util

        top = program.split(".", 1)[0]
        if not all(part.isidentifier() for part in program.split(".")):
            raise UsageError(f"rngtrace run: {program!r} is not a module name")
        # only the top-level package is looked up here: finding a submodule imports its
        # parents, which must happen inside the recording
        saved = sys.path[:]
        sys.path[0:1] = [os.getcwd()]  # where python -m looks first
        try:
            found = importlib.util.find_spec(top) is not None
        finally:
            sys.path[:] = saved
        if not found:
            raise UsageError(f"rngtrace run: no module named {top!r}")
        return (lambda: runpy.run_module(program, run_name="__main__", alter_sys=True),
                program, os.getcwd())
    if not os.path.exists(program):
        raise UsageError(f"rngtrace run: cannot open {program!r}: no such file")
    if os.path.isdir(program) and not os.path.exists(os.path.join(program, "__main__.py")):
        raise UsageError(f"rngtrace run: cannot run {program!r}: a directory without "
                         "__main__.py")
    path0 = os.path.realpath(program)
    if not os.path.isdir(path0):
        path0 = os.path.dirname(path0)
    return lambda: runpy.run_path(program, run_name="__main__"), program, path0


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
    return 1


def _print_traceback(e: BaseException) -> None:
    """The traceback from the program's first frame on, without rngtrace's and runpy's."""
    tb: TracebackType | None = e.__traceback__
    ours = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
            os.path.abspath(runpy.__file__))
    while tb is not None and (tb.tb_frame.f_code.co_filename == "<frozen runpy>" or
                              os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(ours)):
        tb = tb.tb_next
    if tb is None and isinstance(e, ImportError):  # -m with no such module: as python says
        print(f"rngtrace run: {e}", file=sys.stderr)
        return
    traceback.print_exception(type(e), e, tb)


def _report(meta: dict, complete: bool, steps: int, generators: int) -> None:
    draws = meta.get("draws", 0)
    where = os.path.relpath(meta["path"]) if "path" in meta else "?"
    if where.startswith(".." + os.sep):
        where = meta["path"]
    state = "" if complete else " (incomplete: the program raised)"
    print(f"rngtrace: {draws:,} draw{'s' if draws != 1 else ''}, {steps:,} optimizer "
          f"step{'s' if steps != 1 else ''}, {generators} generator"
          f"{'s' if generators != 1 else ''} recorded in {where}{state}", file=sys.stderr)
