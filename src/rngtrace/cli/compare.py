"""``rngtrace compare``: run a program at two revisions (or in two directories), then diff.

Each side is a git revision (exported into a temporary directory), the working tree
(copied into one, uncommitted changes included) or a directory (used as it is); see
:mod:`.checkouts`. The working tree's git-ignored files are linked into each copy,
read-only (:mod:`.ignored`). The user's working tree, index, stash, branches and
worktrees are never touched. Both runs use this interpreter, one after the other
(:mod:`.launch`), with their output relayed to stderr line by line, prefixed with the
run's label. Ctrl-C, SIGTERM and SIGHUP stop the run's whole process group and remove
the temporary directories; a compare killed otherwise (``kill -9``) takes its run
with it and leaves only temporary directories.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

from ..errors import RngtraceError, UsageError
from ..log import LEVELS
from ..text import noun, plural
from . import DIFFERENT, ERROR, OK
from .checkouts import WORKING_TREE, Repo, Side, find_repo, kind_of, make_side, map_program
from .ignored import Ignored, changed, list_ignored
from .launch import Settings, record
from .output import check_output
from .program import (
    SIDE_OPTIONS,
    Program,
    check_program,
    is_python,
    misplaced,
    read_options,
)
from .progress import progress
from .signals import Ended, signals_end_the_work

HELP = "run a program at two git revisions (or in two directories) and diff the draws"
EXAMPLE = """examples:
  rngtrace compare HEAD -- train.py --epochs 1      HEAD against your working tree
  rngtrace compare HEAD~1 HEAD -- train.py --epochs 1
  rngtrace compare v1.0 main --steps 5 -o logs/ train.py
  rngtrace compare HEAD~1 HEAD --level module -- train.py   light mode, whole runs
  rngtrace compare ../project-old ../project-new -- train.py

  rngtrace compare HEAD~1 HEAD -m pkg.train --epochs 1   a module, as 'python -m'

REV_A and REV_B are git revisions, '.' (the working tree, uncommitted changes
included) or directories; without REV_B, REV_A is compared with the working tree.
A revision is exported, and the working tree copied (its tracked and untracked files),
into a temporary directory, where PROGRAM runs from the same relative directory as
you are in now: your working tree, index, stash and branches are left alone, and the
copies are removed afterwards (also on Ctrl-C, SIGTERM or SIGHUP). The working tree's
git-ignored files (data, checkpoints) are linked into each copy, read-only: a Python
write to one writes a copy of it, and nothing the run writes lands in your working
tree (--no-ignored leaves them out). Another directory is used as it is: PROGRAM runs
in it. An absolute PROGRAM path inside the tree is run from each side's copy. Both
runs use this Python; each side's top directory (and its src/, if any) comes first on
PYTHONPATH, so that its packages are the ones imported. --steps N ends each run after
step N (as 'rngtrace run --steps N' does). The logs are kept only with -o DIR, named
after the sides (DIR/HEAD~1.rngtrace.jsonl). Exit code: 0 identical (or differing only by
streams one side adds, as rngtrace diff says), 1 different, 2
error (including a run that failed: the report then starts with the failure)."""


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
    add_program_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        metavar="[REV_B] [--] PROGRAM ARGS",
                        help="REV_B (default: the working tree), then the script to run "
                             "and its arguments")


def add_program_options(parser: argparse.ArgumentParser) -> None:
    """``-m`` and ``--no-ignored``, for compare and bisect."""
    parser.add_argument("-m", dest="module", action="store_true",
                        help="PROGRAM is a module name, run as 'python -m' would")
    parser.add_argument("--no-ignored", action="store_true",
                        help="do not link the working tree's git-ignored files (data, "
                             "checkpoints) into the copies")


def _split_command(args: argparse.Namespace) -> tuple[str | None, Program, list[str]]:
    """REV_B (None: the working tree), PROGRAM, and the command up to PROGRAM (for
    hints), from what follows REV_A; rngtrace's options may come between them."""
    cmd = list(args.command)
    rev_b = None
    if cmd and not cmd[0].startswith("-") and not _is_program(cmd[0]):
        rev_b, cmd = cmd[0], cmd[1:]
    head = ["rngtrace", "compare", *[n for n in (args.rev_a, rev_b) if n is not None]]
    words = read_options("rngtrace compare", cmd, args)
    return rev_b, check_program("rngtrace compare", words, args.module, head), head


def _is_program(token: str) -> bool:
    """Whether the word after REV_A is PROGRAM rather than REV_B: a file, a .py name, or
    ``python`` (written by mistake before the script: the hint follows)."""
    return token.endswith(".py") or os.path.isfile(token) or (
        is_python(token) and not os.path.isdir(token))


def check_settings(verb: str, args: argparse.Namespace) -> Settings:
    """--steps and --run-on as given, checked."""
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"{verb}: --steps must be 1 or more, not {args.steps}")
    if args.run_on and args.steps is None:
        raise UsageError(f"{verb}: --run-on goes with --steps N")
    return Settings(args.steps, args.run_on, args.level)


def run(args: argparse.Namespace) -> int:
    rev_b, program, head = _split_command(args)
    settings = check_settings("rngtrace compare", args)
    repo = find_repo()
    names = (args.rev_a, rev_b if rev_b is not None else ".")
    note = misplaced("rngtrace compare", head, program, SIDE_OPTIONS)
    if note:
        print(note, file=sys.stderr)
    kinds = [kind_of(repo, n) for n in names]
    labels = _labels(names, [k for k, _ in kinds])
    files = log_names(labels)
    if args.output:
        check_output_dir("rngtrace compare", args.output, files)
    copies = any(k != "dir" for k, _ in kinds)  # a directory is used as it is
    ignored = None
    if repo.top is not None and copies and not args.no_ignored:
        ignored = list_ignored(repo.top)
    try:
        with signals_end_the_work(), \
                tempfile.TemporaryDirectory(prefix="rngtrace-compare-") as base:
            return _compare(args, program, settings, repo, names, kinds, labels, files,
                            base, ignored)
    except Ended as e:
        print(f"rngtrace compare: {e.why}: the runs were stopped and the temporary "
              "copies removed", file=sys.stderr)
        return e.code


def _compare(args: argparse.Namespace, program: Program, settings: Settings, repo: Repo,
             names: tuple[str, str], kinds: list[tuple[str, str]],
             labels: tuple[str, str], files: list[str], base: str,
             ignored: Ignored | None) -> int:
    import rngtrace

    from . import load_log
    from .diff import emit

    sides = [make_side(repo, n, k, w, label, base, ignored)
             for n, (k, w), label in zip(names, kinds, labels, strict=True)]
    copies = sum(s.linked is not None for s in sides)
    if ignored is not None and ignored.entries and copies:
        print(f"rngtrace compare: linked the working tree's git-ignored "
              f"{ignored.describe()} into the {noun(copies, 'copy', 'copies')}, read-only "
              "(--no-ignored leaves them out)", file=sys.stderr, flush=True)
    programs = [program] * 2
    if not program.module:
        programs = [Program(p, program.args) for p in map_program(program.name, sides)]
    out = args.output or base
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, f) for f in files]
    codes = [_record(side, path, prog, settings, n + 1) for n, (side, path, prog)
             in enumerate(zip(sides, paths, programs, strict=True))]
    failed = [(s.label, c) for s, c in zip(sides, codes, strict=True) if c]
    if not all(os.path.exists(p) for p in paths):
        raise RngtraceError("compare: a run left no log (see its output above)")
    logs = [load_log(p) for p in paths]
    with progress("comparing the logs"):
        d = rngtrace.diff(logs[0], logs[1], labels=labels)
    if args.output:
        print(f"rngtrace compare: logs kept in {paths[0]} and {paths[1]}", file=sys.stderr)
    if failed:
        counts = {s.label: len(log.draws) for s, log in zip(sides, logs, strict=True)}
        lead = "; ".join(f"the run at {label} failed (exit code {code}; its output is "
                         f"above) after {plural(counts[label], 'draw')}"
                         for label, code in failed)
        print(f"rngtrace compare: {lead}: the comparison below covers only what was "
              "recorded before", file=sys.stderr if args.json else sys.stdout, flush=True)
    emit(d, args.json)
    if failed:
        return ERROR
    return OK if d.agrees else DIFFERENT


def check_output_dir(verb: str, out: str, files: list[str]) -> None:
    """-o names a directory; the logs written in it may replace logs only."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"{verb}: -o {out} exists and is not a directory (-o "
                         "names a directory for the two logs)")
    if os.path.isdir(out):
        for f in files:
            check_output(verb, os.path.join(out, f))


def log_names(labels: tuple[str, str]) -> list[str]:
    """File names for the two logs, from the sides' labels (``HEAD~1.rngtrace.jsonl``)."""
    stems = [re.sub(r"[^\w.~+@-]+", "-", label).strip("-.") or "run" for label in labels]
    if stems[0] == stems[1]:
        stems = [f"a-{stems[0]}", f"b-{stems[1]}"]
    return [f"{s}.rngtrace.jsonl" for s in stems]


def _record(side: Side, path: str, program: Program, settings: Settings, n: int) -> int:
    """Run the program in one side, relaying its output; check that the working tree's
    linked files are as they were."""
    tag = f"[{n}/2 {side.label}]"
    print(f"rngtrace compare: {tag} running {program.text()} in {side.cwd}",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    code = record(side, path, program, settings,
                  lambda line: print(f"{tag} {line}", file=sys.stderr, flush=True),
                  side.protect)
    print(f"rngtrace compare: {tag} finished in {time.monotonic() - start:.1f}s"
          + (f" with exit code {code}" if code else ""), file=sys.stderr, flush=True)
    check_linked("compare", side)
    return code


def check_linked(verb: str, side: Side) -> None:
    """An error when the run changed a file of the working tree it reached through a
    link (a write from C code, which the run's guard does not see)."""
    if side.linked is None:
        return
    found = changed(side.linked)
    if found:
        raise RngtraceError(
            f"{verb}: the run at {side.label} changed {len(found)} git-ignored "
            f"{noun(len(found), 'file')} of your working tree through the links "
            f"to it ({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}): written "
            "by code the read-only guard cannot see (C code opening the file itself); "
            "rerun with --no-ignored")


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
