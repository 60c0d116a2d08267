"""``rngtrace compare``: run a program at two revisions (or in two directories), then diff.

Each side is a git revision (exported into a temporary directory), the working tree
(copied into one, uncommitted changes included) or a directory (used as it is); see
:mod:`.checkouts`. The user's working tree, index, stash, branches and worktrees are
never touched. Both runs use this interpreter (``sys.executable -m rngtrace run``),
one after the other, each in its own process group, with their output relayed to
stderr line by line, prefixed with the run's label. Ctrl-C, SIGTERM and SIGHUP stop
the run's whole process group and remove the temporary directories.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress

from ..errors import RngtraceError, UsageError
from ..log import LEVELS
from . import DIFFERENT, ERROR, OK, program_hint
from .checkouts import WORKING_TREE, Repo, Side, find_repo, kind_of, make_side, map_program
from .output import check_output
from .signals import Ended, signals_end_the_work

HELP = "run a program at two git revisions (or in two directories) and diff the draws"
EXAMPLE = """examples:
  rngtrace compare HEAD -- train.py --epochs 1      HEAD against your working tree
  rngtrace compare HEAD~1 HEAD -- train.py --epochs 1
  rngtrace compare v1.0 main --steps 5 -o logs/ train.py
  rngtrace compare HEAD~1 HEAD --level module -- train.py   light mode, whole runs
  rngtrace compare ../project-old ../project-new -- train.py

REV_A and REV_B are git revisions, '.' (the working tree, uncommitted changes
included) or directories; without REV_B, REV_A is compared with the working tree.
A revision is exported, and the working tree copied (its tracked and untracked files,
not the ignored ones), into a temporary directory, where PROGRAM runs from the same
relative directory as you are in now: your working tree, index, stash and branches
are left alone, and the copies are removed afterwards (also on Ctrl-C, SIGTERM or
SIGHUP). Another directory is used as it is: PROGRAM runs in it. An absolute PROGRAM
path inside the tree is run from each side's copy. Both runs use this Python; each
side's top directory (and its src/, if any) comes first on PYTHONPATH, so that its
packages are the ones imported. --steps N ends each run after step N (as 'rngtrace
run --steps N' does). The logs are kept only with -o DIR, named after the sides
(DIR/HEAD~1.rngtrace.jsonl). Exit code: 0 identical, 1 different, 2 error (including
a run that failed: the diff is still printed)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev_a", metavar="REV_A",
                        help="a git revision, '.' (the working tree) or a directory")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="record N optimizer steps in each run, then end it")
    parser.add_argument("--run-on", action="store_true",
                        help="with --steps: let each run go on after step N")
    parser.add_argument("--level", choices=LEVELS, default="op",
                        help="as for 'rngtrace run': 'op' (default) or 'module'")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="keep the two logs in DIR (created if needed)")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        metavar="[REV_B] [--] PROGRAM ARGS",
                        help="REV_B (default: the working tree), then the script to run "
                             "and its arguments")


# options that may also come between REV_B and PROGRAM: argparse hands them over in
# ``command`` (a REMAINDER takes options too), so they are read here, up to PROGRAM
_VALUED = {"--steps": "steps", "-o": "output", "--output": "output", "--level": "level"}
_FLAGS = {"--json": "json", "--run-on": "run_on"}


def _split_command(args: argparse.Namespace) -> tuple[str | None, str | None, list[str]]:
    """REV_B (None: the working tree), PROGRAM and its arguments, from what follows
    REV_A; rngtrace's options may come between them."""
    cmd = list(args.command)
    rev_b = None
    if cmd and not cmd[0].startswith("-") and not _is_program(cmd[0]):
        rev_b, cmd = cmd[0], cmd[1:]
    i = 0
    while i < len(cmd):
        name, eq, value = cmd[i].partition("=")
        if cmd[i] == "--":
            i += 1
            break
        if name in _VALUED:
            if not eq:
                if i + 1 == len(cmd):
                    raise UsageError(f"rngtrace compare: {name} needs a value")
                i += 1
                value = cmd[i]
            if _VALUED[name] == "level":
                if value not in LEVELS:
                    raise UsageError(f"rngtrace compare: --level is 'op' or 'module', not "
                                     f"{value!r}")
                args.level = value
            elif _VALUED[name] == "steps":
                try:
                    args.steps = int(value)
                except ValueError:
                    raise UsageError(f"rngtrace compare: --steps needs a number, not "
                                     f"{value!r}") from None
            else:
                args.output = value
        elif cmd[i] in _FLAGS:
            setattr(args, _FLAGS[cmd[i]], True)
        elif cmd[i].startswith("-"):
            raise UsageError(f"rngtrace compare: unknown option {cmd[i]!r} ("
                             + program_hint("rngtrace compare REV_A REV_B", name)
                             + "; '--' before a program whose name starts with '-')")
        else:
            break
        i += 1
    return (rev_b, cmd[i], cmd[i + 1:]) if i < len(cmd) else (rev_b, None, [])


def _is_program(token: str) -> bool:
    """Whether the word after REV_A is PROGRAM rather than REV_B: a file, or a .py name."""
    return token.endswith(".py") or os.path.isfile(token)


def run(args: argparse.Namespace) -> int:
    rev_b, args.program, args.args = _split_command(args)
    if args.program is None:
        raise UsageError("rngtrace compare: which program? (see 'rngtrace compare --help')")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"rngtrace compare: --steps must be 1 or more, not {args.steps}")
    if args.run_on and args.steps is None:
        raise UsageError("rngtrace compare: --run-on goes with --steps N")
    repo = find_repo()
    names = (args.rev_a, rev_b if rev_b is not None else ".")
    kinds = [kind_of(repo, n) for n in names]
    labels = _labels(names, [k for k, _ in kinds])
    files = _log_names(labels)
    if args.output:
        _check_output_dir(args.output, files)
    try:
        with signals_end_the_work(), \
                tempfile.TemporaryDirectory(prefix="rngtrace-compare-") as base:
            return _compare(args, repo, names, kinds, labels, files, base)
    except Ended as e:
        print(f"rngtrace compare: {e.why}: the runs were stopped and the temporary "
              "copies removed", file=sys.stderr)
        return e.code


def _compare(args: argparse.Namespace, repo: Repo, names: tuple[str, str],
             kinds: list[tuple[str, str]], labels: tuple[str, str], files: list[str],
             base: str) -> int:
    import rngtrace

    from . import load_log
    from .diff import emit

    sides = [make_side(repo, n, k, w, label, base)
             for n, (k, w), label in zip(names, kinds, labels, strict=True)]
    programs = map_program(args.program, sides)
    out = args.output or base
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, f) for f in files]
    codes = [_record(side, path, program, args, n + 1) for n, (side, path, program)
             in enumerate(zip(sides, paths, programs, strict=True))]
    if not all(os.path.exists(p) for p in paths):
        raise RngtraceError("compare: a run left no log (see its output above)")
    d = rngtrace.diff(load_log(paths[0]), load_log(paths[1]), labels=labels)
    if args.output:
        print(f"rngtrace compare: logs kept in {paths[0]} and {paths[1]}", file=sys.stderr)
    emit(d, args.json)
    if any(codes):
        failed = [s.label for s, c in zip(sides, codes, strict=True) if c]
        print(f"rngtrace compare: the run at {' and '.join(failed)} failed: the "
              f"comparison covers what was recorded before", file=sys.stderr)
        return ERROR
    return OK if d.identical else DIFFERENT


def _check_output_dir(out: str, files: list[str]) -> None:
    """-o names a directory; the logs written in it may replace logs only."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"rngtrace compare: -o {out} exists and is not a directory (-o "
                         "names a directory for the two logs)")
    if os.path.isdir(out):
        for f in files:
            check_output("rngtrace compare", os.path.join(out, f))


def _log_names(labels: tuple[str, str]) -> list[str]:
    """File names for the two logs, from the sides' labels (``HEAD~1.rngtrace.jsonl``)."""
    stems = [re.sub(r"[^\w.~+@-]+", "-", label).strip("-.") or "run" for label in labels]
    if stems[0] == stems[1]:
        stems = [f"a-{stems[0]}", f"b-{stems[1]}"]
    return [f"{s}.rngtrace.jsonl" for s in stems]


def _record(side: Side, path: str, program: str, args: argparse.Namespace, n: int) -> int:
    """Run the program under ``rngtrace run`` in one side, in its own process group;
    relay its output; on any interruption, stop the whole group."""
    cmd = [sys.executable, "-m", "rngtrace", "run", "-o", os.path.abspath(path)]
    if args.steps is not None:
        cmd += ["--steps", str(args.steps)] + (["--run-on"] if args.run_on else [])
    if args.level != "op":
        cmd += ["--level", args.level]
    cmd += ["--", program, *args.args]
    env = dict(os.environ)
    first = [side.root] + [p for p in (os.path.join(side.root, "src"),) if os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(first + [p for p in
                                                 [env.get("PYTHONPATH", "")] if p])
    tag = f"[{n}/2 {side.label}]"
    print(f"rngtrace compare: {tag} running {' '.join([program, *args.args])} in "
          f"{side.cwd}", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=side.cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", bufsize=1,
                                start_new_session=True)
    except OSError as e:
        raise RngtraceError(f"compare: cannot start {sys.executable}: {e}") from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            print(f"{tag} {line.rstrip()}", file=sys.stderr, flush=True)
        code = proc.wait()
    except BaseException:
        _stop_group(proc)
        raise
    finally:
        _kill_group(proc.pid, signal.SIGKILL)  # whatever the program left running
    print(f"rngtrace compare: {tag} finished in {time.monotonic() - start:.1f}s"
          + (f" with exit code {code}" if code else ""), file=sys.stderr, flush=True)
    return code


def _stop_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM to the run's process group (``rngtrace run`` then finishes its log),
    SIGKILL if it is still there after ``grace`` seconds."""
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, sig)


def _labels(names: tuple[str, str], kinds: list[str]) -> tuple[str, str]:
    """What the report calls each side: the revision as given, "working tree", or the
    directory's name (its path when both names agree)."""
    out = []
    for name, kind in zip(names, kinds, strict=True):
        if kind == "revision":
            out.append(name)
        elif kind == "tree":
            out.append(WORKING_TREE)
        else:
            out.append(os.path.basename(os.path.normpath(os.path.abspath(name))))
    if out[0] == out[1] and kinds == ["dir", "dir"]:
        out = [os.path.normpath(n) for n in names]
    if out[0] == out[1]:
        out = [f"{out[0]} (a)", f"{out[1]} (b)"]
    return out[0], out[1]
