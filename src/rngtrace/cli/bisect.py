"""``rngtrace bisect``: the first commit whose random draws differ from a good one's.

The commits searched are those of BAD's first-parent line that descend from GOOD
(:func:`first_parent_line`, oldest first): one line, in which "draws as GOOD" is
expected to hold up to some commit and fail after it, so that a binary search
(:class:`~.search.Search`) finds that commit in about log2(N) runs. A merge on that
line is one step standing for everything its branch brought in; when it is the commit
found, the report says how to search its branch. ``git bisect`` is not used, so no
bisect state is left in the repository (nor a checkout: each commit is exported into
a temporary directory as ``compare`` exports a revision, with the working tree's
ignored files linked in read-only). A commit whose run fails is skipped, as ``git
bisect skip`` does: the search tests its nearest neighbour instead.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RngtraceError, UsageError
from ..log import LEVELS
from . import DIFFERENT, OK, printable, stdout_may_close
from .checkouts import Repo, Side, find_repo, is_revision, make_side, map_program
from .compare import (
    add_program_options,
    check_linked,
    check_output_dir,
    check_settings,
    log_names,
)
from .ignored import Ignored, list_ignored
from .launch import Settings, record
from .program import SIDE_OPTIONS, Program, check_program, misplaced, read_options
from .search import Search
from .signals import Ended, signals_end_the_work

if TYPE_CHECKING:
    from ..diffing import Diff
    from ..log import Log

HELP = "find the first commit whose random draws differ from a good revision's"
EXAMPLE = """examples:
  rngtrace bisect v1.0 HEAD -- train.py --epochs 1
  rngtrace bisect v1.0 main --steps 1 -m pkg.train
  rngtrace bisect HEAD~40 HEAD --level module -o logs/ train.py

GOOD and BAD are revisions, GOOD an ancestor of BAD. The commits searched are BAD's
first-parent line back to GOOD (those descending from GOOD, oldest first): a merge
there is one step, standing for what its branch brought in (when
it is the one found, the report says how to search its branch). Each commit tested is
exported into a temporary directory, as 'rngtrace compare' exports a revision (your
git-ignored files linked in, read-only; --no-ignored leaves them out), PROGRAM is
recorded there, from the directory you are in, and its draws are compared with
GOOD's. A binary search tests about log2(N) commits, after GOOD and BAD. A commit
whose run fails (or leaves no log) is skipped, as 'git bisect skip' does, and its
neighbour tested instead; when skipped commits hide the first one, every candidate is
named. Your working tree, index, stash, branches and bisect state are left alone.
Progress goes to stderr when it is a terminal. -o DIR keeps GOOD's log and the found
commit's. Exit code: 0 a commit differs (printed with the diff's cause), 1 none does
(BAD draws what GOOD draws), 2 error (GOOD or BAD cannot run, bad revisions)."""

VERB = "rngtrace bisect"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("good", metavar="GOOD", help="a revision whose draws are right")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="record N optimizer steps in each run, then end it")
    parser.add_argument("--run-on", action="store_true",
                        help="with --steps: let each run go on after step N")
    parser.add_argument("--level", choices=LEVELS, default="op",
                        help="as for 'rngtrace run': 'op' (default) or 'module'")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="keep GOOD's log and the found commit's in DIR")
    parser.add_argument("--json", action="store_true",
                        help="print the result as JSON (with the diff's Diff.to_dict())")
    add_program_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="BAD [--] PROGRAM ARGS",
                        help="a later revision whose draws differ, then the script to run "
                             "and its arguments")


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    merge: bool = False

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class Tested:
    """One run: the commit, ``"same"``, ``"differs"`` or ``"skipped"``, and what to
    say about it (the cause, the exit code)."""

    commit: Commit
    result: str
    detail: str
    draws: int | None = None


def run(args: argparse.Namespace) -> int:
    words = list(args.command)
    if not words or words[0].startswith("-"):
        raise UsageError(f"{VERB}: which BAD revision? ({VERB} GOOD BAD -- PROGRAM ...)")
    bad = words[0]
    head = ["rngtrace", "bisect", args.good, bad]
    program = check_program(VERB, read_options(VERB, words[1:], args), args.module, head)
    args.program_text = program.text()
    settings = check_settings(VERB, args)
    repo = find_repo()
    if repo.top is None:
        raise UsageError(f"{VERB}: not inside a git repository")
    note = misplaced(VERB, head, program, SIDE_OPTIONS)
    if note:
        print(note, file=sys.stderr)
    good_c, bad_c = _commit(repo, args.good, "GOOD"), _commit(repo, bad, "BAD")
    _check_order(repo.top, good_c, bad_c, args.good, bad)
    line = first_parent_line(repo.top, good_c.sha, bad_c.sha)
    labels = (args.good, bad)
    if args.output:
        check_output_dir(VERB, args.output, log_names(labels))
    ignored = None if args.no_ignored else list_ignored(repo.top)
    if ignored is not None and ignored.entries:
        print(f"{VERB}: linking the working tree's git-ignored {ignored.describe()} into "
              "each commit's copy, read-only (--no-ignored leaves them out)", file=sys.stderr)
    try:
        with signals_end_the_work(), \
                tempfile.TemporaryDirectory(prefix="rngtrace-bisect-") as base:
            runner = _Runner(repo, program, settings, base, ignored)
            return _bisect(args, runner, good_c, line)
    except Ended as e:
        print(f"{VERB}: {e.why}: the run was stopped and the temporary copies removed",
              file=sys.stderr)
        return e.code


def _git(top: str, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=top, capture_output=True, text=True,
                       errors="replace", check=False)
    if r.returncode:
        raise RngtraceError(f"bisect: git {args[0]} failed: {r.stderr.strip()}")
    return r.stdout


def _commit(repo: Repo, name: str, role: str) -> Commit:
    sha = is_revision(repo, name)
    if sha is None:
        raise RngtraceError(f"bisect: {role} {name!r} is not a revision of this repository")
    assert repo.top is not None
    parents, _, subject = _git(repo.top, "log", "-1", "--format=%P%x00%s", sha).partition(
        "\0")
    return Commit(sha, subject.strip(), len(parents.split()) > 1)


def _check_order(top: str, good: Commit, bad: Commit, gname: str, bname: str) -> None:
    if good.sha == bad.sha:
        raise RngtraceError(f"bisect: GOOD and BAD are the same commit ({good.short})")
    r = subprocess.run(["git", "merge-base", "--is-ancestor", good.sha, bad.sha], cwd=top,
                       capture_output=True, check=False)
    if r.returncode:
        raise RngtraceError(f"bisect: GOOD ({gname}) is not an ancestor of BAD ({bname}): "
                            "give an older GOOD (git merge-base GOOD BAD is one)")


def first_parent_line(top: str, good: str, bad: str) -> list[Commit]:
    """The commits of ``bad``'s first-parent line that descend from ``good`` (an
    ancestor of it), oldest first, ``bad`` last. With ``good`` on a merged branch, the
    merge comes first (``git log --first-parent --ancestry-path`` would list nothing:
    it follows first parents to tell descendants too)."""
    descend = set(_git(top, "rev-list", "--ancestry-path", f"{good}..{bad}", "--").split())
    out = _git(top, "log", "--first-parent", "--reverse", "--format=%H%x00%P%x00%s",
               f"{good}..{bad}", "--")
    line = []
    for row in out.splitlines():
        sha, parents, subject = [*row.split("\0"), "", ""][:3]
        if sha in descend:  # a suffix of the line: a descendant's children descend too
            line.append(Commit(sha, subject, len(parents.split()) > 1))
    return line


class _Runner:
    """Exports a commit, records PROGRAM there, removes the export; keeps the log."""

    def __init__(self, repo: Repo, program: Program, settings: Settings, base: str,
                 ignored: Ignored | None) -> None:
        self._repo, self._program, self._settings = repo, program, settings
        self._base, self._ignored = base, ignored
        self.logs = os.path.join(base, "logs")
        os.makedirs(self.logs)
        self.tail: collections.deque[str] = collections.deque(maxlen=8)

    def log_path(self, commit: Commit) -> str:
        return os.path.join(self.logs, f"{commit.sha}.rngtrace.jsonl")

    def run(self, commit: Commit) -> int:
        """Record PROGRAM at ``commit``; its exit code (the last lines of its output in
        ``tail``)."""
        side: Side = make_side(self._repo, commit.sha, "revision", commit.sha, commit.short,
                               self._base, self._ignored, say=lambda text: None)
        program = self._program
        if not program.module:
            program = Program(map_program(program.name, [side])[0], program.args)
        self.tail.clear()
        try:
            code = record(side, self.log_path(commit), program, self._settings,
                          self.tail.append, side.protect)
            check_linked("bisect", side)
        finally:
            shutil.rmtree(side.root, ignore_errors=True)
        if code == 0 and not os.path.exists(self.log_path(commit)):
            code = -1
        return code


class _Progress:
    """One line per run on stderr, when it is a terminal (quiet when piped)."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()

    def say(self, text: str) -> None:
        if self.on:
            print(printable(f"{VERB}: {text}"), file=sys.stderr, flush=True)


def _bisect(args: argparse.Namespace, runner: _Runner, good: Commit,
            line: list[Commit]) -> int:
    progress = _Progress()
    search = Search(len(line))
    progress.say(f"{len(line)} commits after {args.good} up to {args.command[0]} on the "
                 f"first-parent line: about {search.steps_left() + 2} runs, GOOD and BAD "
                 "first")
    ref = _reference(runner, good, args.good, progress)
    tested: list[Tested] = []
    diffs: dict[int, Diff] = {}
    i: int | None = len(line) - 1
    while i is not None:
        t, d, said = _test(runner, ref, line[i], args.good,
                           "BAD" if not tested else str(len(tested)))
        tested.append(t)
        if len(tested) == 1 and t.result != "differs":
            progress.say(said)
            return _bad_is_not_different(args, runner, t)
        search.mark(i, t.result)
        if d is not None:
            diffs[i] = d
        i = search.next()
        progress.say(said if i is None else f"{said}; about {search.steps_left() + 1} more")
    found = search.candidates()
    d = diffs[found[-1]]
    _report(args, line, found, tested, d, len(line))
    if args.output:
        _keep(args.output, runner, (good, line[found[-1]]), d.labels)
    return OK


def _reference(runner: _Runner, good: Commit, name: str, progress: _Progress) -> Log:
    """GOOD's log; an error when GOOD cannot run (nothing to compare with)."""
    from . import load_log

    start = time.monotonic()
    code = runner.run(good)
    if code:
        _print_tail(runner, "GOOD")
        raise RngtraceError(f"bisect: the run at GOOD ({name}, {good.short}) failed ("
                            + (f"exit code {code}" if code > 0 else "no log")
                            + "): there is nothing to compare with (its last lines above)")
    log = load_log(runner.log_path(good))
    progress.say(f"[GOOD] {good.short} {good.subject!r}: {len(log.draws):,} draws "
                 f"({time.monotonic() - start:.1f}s)")
    return log


def _test(runner: _Runner, ref: Log, commit: Commit, good_name: str, tag: str
          ) -> tuple[Tested, Diff | None, str]:
    """Run one commit and compare its draws with GOOD's; the progress line."""
    import rngtrace

    from . import load_log

    start = time.monotonic()
    code = runner.run(commit)
    d = None
    if code:
        t = Tested(commit, "skipped", f"exit code {code}" if code > 0 else "no log")
        said = f"cannot run ({t.detail}): skipped"
    else:
        log = load_log(runner.log_path(commit))
        d = rngtrace.diff(ref, log, labels=(good_name, commit.short))
        if d.identical:
            t, d = Tested(commit, "same", "", len(log.draws)), None
            said = f"draws as GOOD ({len(log.draws):,} draws)"
        else:
            cause = d.cause.summary if d.cause is not None else "draws differ"
            t = Tested(commit, "differs", cause, len(log.draws))
            said = f"differs: {cause}"
    return t, d, (f"[{tag}] {commit.short} {commit.subject!r}: {said} "
                  f"({time.monotonic() - start:.1f}s)")


def _print_tail(runner: _Runner, tag: str) -> None:
    for text in runner.tail:
        print(printable(f"[{tag}] {text}"), file=sys.stderr)


def _bad_is_not_different(args: argparse.Namespace, runner: _Runner, t: Tested) -> int:
    """BAD draws as GOOD (exit 1), or cannot run (an error)."""
    bad = args.command[0]
    if t.result == "skipped":
        _print_tail(runner, "BAD")
        raise RngtraceError(f"bisect: the run at BAD ({bad}, {t.commit.short}) failed "
                            f"({t.detail}): nothing to search for (its last lines above)")
    with stdout_may_close():
        if args.json:
            json.dump(_as_dict(args, [], [t], None), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(printable(f"{VERB}: BAD ({bad}, {t.commit.short}) draws the same values "
                            f"as GOOD ({args.good}): no commit to find ({t.draws:,} draws; "
                            "the commits between were not run)"))
    return DIFFERENT


def _report(args: argparse.Namespace, line: list[Commit], found: list[int],
            tested: list[Tested], d: Diff, n: int) -> None:
    from .diff import emit

    first = line[found[-1]]
    with stdout_may_close():
        if args.json:
            json.dump(_as_dict(args, [line[i] for i in found], tested, d), sys.stdout,
                      indent=1)
            sys.stdout.write("\n")
            return
        for text in _summary(args, line, found, tested, n):
            print(printable(text))
        print()
    emit(d, False)
    if first.merge:
        print(printable(f"({first.short} is a merge: the change came with the branch it "
                        f"merged; to search that branch: {VERB} $(git merge-base "
                        f"{first.short}^1 {first.short}^2) {first.short}^2 -- "
                        f"{args.program_text})"))


def _summary(args: argparse.Namespace, line: list[Commit], found: list[int],
             tested: list[Tested], n: int) -> list[str]:
    first = line[found[-1]]
    out = []
    if len(found) == 1:
        out.append(f"{VERB}: {first.sha} is the first commit whose draws differ from "
                   f"{args.good}'s")
        out.append(f"  {first.short} {first.subject}")
    else:
        out.append(f"{VERB}: the first commit whose draws differ from {args.good}'s is one "
                   f"of these {len(found)} (skipped commits hide which):")
        out += [f"  {line[i].short} {line[i].subject}"
                + ("  (differs)" if i == found[-1] else "  (skipped: cannot run)")
                for i in found]
    skipped = [t for t in tested if t.result == "skipped"]
    out.append(f"  ran GOOD and {len(tested)} of the {n} commits after it"
               + (f"; skipped {len(skipped)} that could not run: "
                  + ", ".join(f"{t.commit.short} ({t.detail})" for t in skipped)
                  if skipped else ""))
    return out


def _as_dict(args: argparse.Namespace, found: list[Commit], tested: list[Tested],
             d: Diff | None) -> dict[str, Any]:
    """The result as JSON: the first differing commit (None when none differs, or when
    skipped commits leave several ``candidates``), every run, and the diff."""
    return {
        "good": args.good, "bad": args.command[0],
        "first": found[0].sha if len(found) == 1 else None,
        "candidates": [c.sha for c in found],
        "tested": [{"commit": t.commit.sha, "subject": t.commit.subject,
                    "result": t.result, "detail": t.detail, "draws": t.draws}
                   for t in tested],
        "diff": d.to_dict() if d is not None else None,
    }


def _keep(out: str, runner: _Runner, commits: tuple[Commit, Commit],
          labels: tuple[str, str]) -> None:
    """Copy GOOD's log and the found commit's into ``out``, named after them."""
    os.makedirs(out, exist_ok=True)
    kept = []
    for commit, name in zip(commits, log_names(labels), strict=True):
        kept.append(os.path.join(out, name))
        shutil.copyfile(runner.log_path(commit), kept[-1])
    print(f"{VERB}: logs kept in {kept[0]} and {kept[1]}", file=sys.stderr)
