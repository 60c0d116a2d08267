"""``rngtrace run``: run a Python program as ``python`` would, recording its random draws."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..log import plural
from . import ERROR, UsageError, quiet_torch_import
from .output import check_output, is_finished, partial_name
from .signals import Ended, signals_end_the_work

HELP = "run a Python program and record its random draws to a log file"
EXAMPLE = """examples:
  rngtrace run train.py --lr 0.1              record the whole run: train.rngtrace.jsonl
  rngtrace run --steps 10 -o a.jsonl train.py   record 10 optimizer steps, then end
  rngtrace run --steps 10 --run-on train.py   record 10 steps, let the training go on
  rngtrace run -m mypkg.train --epochs 1      run a module, as 'python -m' would
  rngtrace run --level module train.py        the light mode, for a whole training

rngtrace's options go before the program; everything after it is the program's own
command line. The program runs as 'python PROGRAM ARGS' would run it (its sys.argv,
__name__ == "__main__", sys.path[0]). With --steps N the program is ended (cleanly,
as by an exception its 'finally' blocks see) once step N is recorded, unless --run-on.

The log is written as the program runs, under a temporary name next to it
(FILE.PID.partial, which loads if the run is killed), and moved into place when the
program ends, also by an exception, Ctrl-C, SIGTERM or SIGHUP. A program that fails
before its first draw leaves an existing log as it was. -o refuses the program itself
and any existing file that is not an rngtrace log. Where the log went is printed on
stderr. The exit code is the program's: 1 with its traceback if it raised, 128+N if
signal N ended it, 2 if rngtrace could not start it or could not write the log."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the log file (default: PROGRAM's name + .rngtrace.jsonl, "
                             "in the current directory)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="record N optimizer steps, then end the program (see --run-on)")
    parser.add_argument("--run-on", action="store_true",
                        help="with --steps: let the program go on after step N, at full "
                             "speed, instead of ending it")
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
    command = list(args.command)
    if command[:1] == ["--"]:  # 'rngtrace run -o x -- train.py': the '--' is rngtrace's
        command = command[1:]
    if not command:
        raise UsageError("rngtrace run: which program? (see 'rngtrace run --help')")
    program, program_args = command[0], command[1:]
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"rngtrace run: --steps must be 1 or more, not {args.steps}")
    if args.run_on and args.steps is None:
        raise UsageError("rngtrace run: --run-on goes with --steps N")
    runner, argv0, path0 = _runner(program, args.module)
    output = args.output or default_output(program, args.module)
    quiet_torch_import()
    from ..recording import job_path

    output = os.fspath(job_path(output))  # in a torchrun job: this rank's own file
    inputs = [program] if not args.module else []
    inputs += [a for a in program_args if os.path.isfile(a)]
    replacing = check_output("rngtrace run", output, inputs)
    partial = partial_name(output)
    code, log = _record(runner, argv0, path0, program_args, partial, args)
    # where the window really wrote (a job's rank renames the file it is given)
    written = log.meta.get("path", partial)
    if not os.path.relpath(written).startswith(".."):
        written = os.path.relpath(written)
    return _settle(log, code, written, output, replacing)


def _record(runner: Callable[[], object], argv0: str, path0: str, program_args: list[str],
            partial: str, args: argparse.Namespace) -> tuple[int, Any]:
    """Run the program in a window streaming to ``partial``; its exit code and log."""
    quiet_torch_import()
    import rngtrace

    # without --run-on the CLI closes the window itself, then ends the program
    ending = args.steps is not None and not args.run_on
    window = rngtrace.record(None if ending else args.steps, path=partial, level=args.level,
                             python_rng=args.python_rng)
    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    saved_cwd = os.getcwd()  # -o is relative to it, also if the program changes directory
    sys.argv = [argv0, *program_args]  # also what the log's header records
    sys.path[0:1] = [path0]
    code = 0
    if sys.stderr.isatty():  # progress for a person watching a long run; logs stay clean
        until = (f" until optimizer step {args.steps}" if args.steps is not None else "")
        print(f"rngtrace run: recording {argv0}{until} (Ctrl-C ends it; the log is kept)",
              file=sys.stderr, flush=True)
    try:
        with signals_end_the_work(), window:
            end = _end_after(window, args.steps) if ending else None
            try:
                runner()
            except SystemExit as e:  # the program chose to exit: a complete recording
                code = _exit_code(e)
            finally:
                if end is not None:
                    end.remove()
    except Ended as e:
        print(f"rngtrace run: the program was {e.why}" if e.code else f"rngtrace run: {e.why}",
              file=sys.stderr)
        code = e.code
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
        if os.getcwd() != saved_cwd:
            os.chdir(saved_cwd)
    return code, window.log


def _settle(log: Any, code: int, partial: str, output: str, replacing: bool) -> int:
    """Move the finished log into place, or keep the previous one; say which."""
    if not is_finished(partial):
        print(f"rngtrace: error: the log could not be written in full (see the warning "
              f"above); what was written is in {partial}"
              + (f", and {output} is left as it was" if replacing else ""), file=sys.stderr)
        return ERROR
    if code and replacing and not log.meta.get("draws"):
        os.unlink(partial)
        print(f"rngtrace: the program failed before its first draw: {output} is left as "
              "it was", file=sys.stderr)
        return code
    try:
        os.replace(partial, output)
    except OSError as e:
        print(f"rngtrace: error: cannot move the log to {output} ({e.strerror or e}); it "
              f"is in {partial}", file=sys.stderr)
        return ERROR
    _report(log, output, replacing, interrupted=code >= 128)
    return code


def _end_after(window: Any, steps: int) -> Any:
    """An optimizer-step hook that closes ``window`` after step ``steps`` and ends the
    program. Registered after the window's own hook, it runs once the window has
    counted the step; it closes the window itself (rather than ``record(steps=N)``)
    because a hook after one that removes itself would break torch's loop over them."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    seen = 0

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        nonlocal seen
        seen += 1
        if seen >= steps:
            window.__exit__(None, None, None)  # complete; the 'with' then does nothing
            raise Ended(f"ended the program after optimizer step {seen} (--steps "
                         f"{steps}; --run-on lets it go on)", 0)

    return register_optimizer_step_post_hook(hook)


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


def _report(log: Any, output: str, replaced: bool, interrupted: bool) -> None:
    n = log.meta.get("draws", 0)
    what = plural(n, "module-level record" if log.level == "module" else "draw")
    where = os.path.relpath(output)
    if where.startswith(".." + os.sep):
        where = os.path.abspath(output)
    state = ("" if log.complete else " (incomplete: the program was interrupted)"
             if interrupted else " (incomplete: the program raised)")
    gens = len(log.generators)
    print(f"rngtrace: {what}, {plural(log.steps, 'optimizer step')}, "
          f"{plural(gens, 'generator')} recorded in {where}{state}"
          + (" (replaced the previous log)" if replaced else ""), file=sys.stderr)
