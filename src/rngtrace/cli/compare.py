"""``rngtrace compare``: run a program at two revisions (or in two directories), then diff.

Each run happens in a clean checkout: a temporary ``git worktree`` of the revision,
outside the user's tree. The user's working tree and index are never touched; the
worktrees are removed afterwards, also when a run fails or the user presses Ctrl-C.
Both runs use this interpreter (``sys.executable -m rngtrace run``), one after the
other, with their output relayed to stderr line by line, prefixed with the run's label.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import RngtraceError
from . import DIFFERENT, ERROR, OK, UsageError, program_hint

HELP = "run a program at two git revisions (or in two directories) and diff the draws"
EXAMPLE = """examples:
  rngtrace compare HEAD~1 HEAD -- train.py --epochs 1
  rngtrace compare v1.0 main --steps 5 -o logs/ train.py
  rngtrace compare HEAD~1 HEAD --level module -- train.py   light mode, whole runs
  rngtrace compare ../project-old ../project-new -- train.py

With two revisions, run inside a git repository: each revision is checked out in a
temporary worktree (your working tree and index are left alone, the worktrees are
removed afterwards) and PROGRAM runs there from the same relative directory as you are
in now. With two directories, PROGRAM runs in each (paths are relative to it). Both
runs use this Python; the checkout's own top directory (and its src/, if any) comes
first on PYTHONPATH, so that its packages are the ones imported. The logs are kept only
with -o DIR (DIR/a.rngtrace.jsonl and DIR/b.rngtrace.jsonl). Exit code: 0 identical,
1 different, 2 error (including a run that failed: the diff is still printed)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rev_a", metavar="REV_A", help="a git revision, or a directory")
    parser.add_argument("rev_b", metavar="REV_B", help="a git revision, or a directory")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="stop recording after N optimizer steps in each run")
    parser.add_argument("--level", choices=("op", "module"), default="op",
                        help="as for 'rngtrace run': 'op' (default) or 'module'")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="keep the two logs in DIR (created if needed)")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="[--] PROGRAM ARGS",
                        help="the script to run and its arguments")


# options that may also come between REV_B and PROGRAM: argparse hands them over in
# ``command`` (a REMAINDER takes options too), so they are read here, up to PROGRAM
_VALUED = {"--steps": "steps", "-o": "output", "--output": "output", "--level": "level"}
_FLAGS = {"--json": "json"}


def _split_command(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    cmd = list(args.command)
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
                if value not in ("op", "module"):
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
    return (cmd[i], cmd[i + 1:]) if i < len(cmd) else (None, [])


@dataclass(frozen=True)
class Side:
    """One of the two runs: its label, where its code is, the directory it runs in."""

    label: str
    root: str
    cwd: str


def run(args: argparse.Namespace) -> int:
    import rngtrace

    from . import load_log
    from .diff import emit

    args.program, args.args = _split_command(args)
    if args.program is None:
        raise UsageError("rngtrace compare: which program? (see 'rngtrace compare --help')")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"rngtrace compare: --steps must be 1 or more, not {args.steps}")
    with _checkouts(args.rev_a, args.rev_b) as (side_a, side_b), \
            tempfile.TemporaryDirectory(prefix="rngtrace-logs-") as tmp:
        out = args.output or tmp
        os.makedirs(out, exist_ok=True)
        paths = [os.path.join(out, f"{n}.rngtrace.jsonl") for n in ("a", "b")]
        codes = []
        for n, (side, path) in enumerate(zip((side_a, side_b), paths, strict=True)):
            codes.append(_record(side, path, args, n + 1))
        if not all(os.path.exists(p) for p in paths):
            raise RngtraceError("compare: a run left no log (see its output above)")
        d = rngtrace.diff(load_log(paths[0]), load_log(paths[1]),
                          labels=(side_a.label, side_b.label))
    if args.output:
        print(f"rngtrace compare: logs kept in {paths[0]} and {paths[1]}", file=sys.stderr)
    emit(d, args.json)
    if any(codes):
        failed = [s.label for s, c in zip((side_a, side_b), codes, strict=True) if c]
        print(f"rngtrace compare: the run at {' and '.join(failed)} failed: the "
              f"comparison covers what was recorded before", file=sys.stderr)
        return ERROR
    return OK if d.identical else DIFFERENT


def _record(side: Side, path: str, args: argparse.Namespace, n: int) -> int:
    """Run the program under ``rngtrace run`` in one checkout; relay its output."""
    cmd = [sys.executable, "-m", "rngtrace", "run", "-o", os.path.abspath(path)]
    if args.steps is not None:
        cmd += ["--steps", str(args.steps)]
    if args.level != "op":
        cmd += ["--level", args.level]
    cmd += [args.program, *args.args]
    env = dict(os.environ)
    first = [side.root] + [p for p in (os.path.join(side.root, "src"),) if os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(first + [p for p in
                                                 [env.get("PYTHONPATH", "")] if p])
    tag = f"[{n}/2 {side.label}]"
    print(f"rngtrace compare: {tag} running {' '.join([args.program, *args.args])} in "
          f"{side.cwd}", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=side.cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", bufsize=1)
    except OSError as e:
        raise RngtraceError(f"compare: cannot start {sys.executable}: {e}") from None
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            print(f"{tag} {line.rstrip()}", file=sys.stderr, flush=True)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    print(f"rngtrace compare: {tag} finished in {time.monotonic() - start:.1f}s"
          + (f" with exit code {code}" if code else ""), file=sys.stderr, flush=True)
    return code


@contextmanager
def _checkouts(rev_a: str, rev_b: str) -> Iterator[tuple[Side, Side]]:
    """Two directories as they are, or two temporary worktrees of two revisions."""
    if os.path.isdir(rev_a) and os.path.isdir(rev_b):
        a, b = os.path.abspath(rev_a), os.path.abspath(rev_b)
        la, lb = _labels(rev_a, rev_b)
        yield Side(la, a, a), Side(lb, b, b)
        return
    top = _git(["rev-parse", "--show-toplevel"], os.getcwd(),
               "not inside a git repository (give two revisions inside one, or two "
               "directories)").strip()
    rel = os.path.relpath(os.path.realpath(os.getcwd()), os.path.realpath(top))
    commits = [_git(["rev-parse", "--verify", "--quiet", f"{r}^{{commit}}"], top,
                    f"{r!r} is neither a revision of this repository nor a directory"
                    ).strip() for r in (rev_a, rev_b)]
    base = tempfile.mkdtemp(prefix="rngtrace-compare-")
    made: list[str] = []
    try:
        sides = []
        for name, rev, commit in zip(("a", "b"), (rev_a, rev_b), commits, strict=True):
            where = os.path.join(base, name)
            _git(["worktree", "add", "--detach", "--quiet", where, commit], top,
                 f"cannot check out {rev!r}")
            made.append(where)
            cwd = os.path.normpath(os.path.join(where, rel))
            label = rev if rev_a != rev_b else f"{rev} ({name})"
            sides.append(Side(label, where, cwd if os.path.isdir(cwd) else where))
        yield sides[0], sides[1]
    finally:
        for where in made:
            subprocess.run(["git", "worktree", "remove", "--force", where], cwd=top,
                           capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
        if made:
            subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True,
                           check=False)


def _git(argv: list[str], cwd: str, error: str) -> str:
    try:
        r = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True,
                           check=False)
    except OSError:
        raise RngtraceError("compare: git is not installed (or not on PATH)") from None
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()
        raise RngtraceError(f"compare: {error}" + (f" ({why[-1]})" if why else ""))
    return r.stdout


def _labels(a: str, b: str) -> tuple[str, str]:
    na = os.path.basename(os.path.normpath(a))
    nb = os.path.basename(os.path.normpath(b))
    return (na, nb) if na != nb else (os.path.normpath(a), os.path.normpath(b))
