"""A pytest guard for random streams: the ``rng_snapshot`` fixture.

Installed with rngtrace (a ``pytest11`` entry point), so any test can ask for it::

    def test_init_stream(rng_snapshot):
        with rng_snapshot():
            torch.manual_seed(0)
            model = build_model()

The block is recorded with :func:`rngtrace.record` and compared with a snapshot stored
next to the test, in ``__rng_snapshots__/<test file>/<test name>.rngtrace.jsonl``. When
the stream changed (a module added, definitions reordered, another seed ...) the test
fails with the :func:`rngtrace.diff` report, cause first. ``pytest
--rng-snapshot-update`` writes missing snapshots and rewrites those that differ; without
it a missing snapshot is a failure, so that CI never accepts a stream silently.

Several snapshots in one test are told apart by name (``rng_snapshot("train")``) or,
unnamed, by order (the second unnamed block is ``<test name>.2``).

``rng_snapshot(check=True)`` also runs :func:`rngtrace.check` on the block's log and
fails the test when it finds anything (repeated streams, a recompute drawing other
masks, workers with identical streams ...), with the check's report.

Snapshots end in ``.rngtrace.jsonl``, so a ``*.rngtrace.jsonl`` line in ``.gitignore``
(natural for the logs ``rngtrace run`` writes) hides them from ``git add``, and CI then
fails with "no snapshot yet". The plugin asks git once per session (``git
check-ignore``) and warns at the end of the run when snapshots it used are ignored,
and a "no snapshot yet" failure says so too.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from .text import noun, plural

if TYPE_CHECKING:
    from .log import Log

SNAPSHOT_DIR = "__rng_snapshots__"
_WRITTEN = pytest.StashKey[list]()
_USED = pytest.StashKey[list]()
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rngtrace")
    group.addoption("--rng-snapshot-update", action="store_true", default=False,
                    help="rngtrace: write missing rng_snapshot files and rewrite those "
                         "whose random stream changed")


class RngSnapshot:
    """What the ``rng_snapshot`` fixture gives: call it to get a recording window."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self._update = bool(request.config.getoption("rng_snapshot_update"))
        self._unnamed = 0
        self.written: list[str] = []

    def path(self, name: str | None = None) -> str:
        """Where the snapshot of the block named ``name`` lives."""
        node = self._request.node
        test_file = str(node.path)
        stem = os.path.splitext(os.path.basename(test_file))[0]
        base = _UNSAFE.sub("_", node.name)
        if name is not None:
            base += "." + _UNSAFE.sub("_", name)
        return os.path.join(os.path.dirname(test_file), SNAPSHOT_DIR, stem,
                            base + ".rngtrace.jsonl")

    @contextmanager
    def __call__(self, name: str | None = None, *, steps: int | None = None,
                 check: bool = False) -> Iterator[Log]:
        """Record the block; at its end, compare with the snapshot (or write it), and
        with ``check`` fail on what :func:`rngtrace.check` finds in it."""
        import rngtrace

        if name is None:
            self._unnamed += 1
            if self._unnamed > 1:
                name = str(self._unnamed)
        path = self.path(name)
        self._request.config.stash.setdefault(_USED, []).append(path)
        with rngtrace.record(steps) as log:
            yield log
        self._check(log, path)
        if check:
            report = rngtrace.check(log, labels=[os.path.basename(path)])
            if len(report):
                pytest.fail(f"rng_snapshot: rngtrace check found hazards\n\n{report}",
                            pytrace=False)

    def _check(self, log: Log, path: str) -> None:
        """Pass if the snapshot matches; else write it (``--rng-snapshot-update``) or fail."""
        problem = self._problem(log, path)
        if problem is None:
            return
        if self._update:
            self._write(log, path)
            return
        pytest.fail(problem, pytrace=False)

    def _problem(self, log: Log, path: str) -> str | None:
        """Why the snapshot at ``path`` does not match ``log`` (None: it does)."""
        import rngtrace

        rel = os.path.relpath(path, str(self._request.config.rootpath))
        if not os.path.exists(path):
            why = ignored_by_git([path], str(self._request.config.rootpath)).get(path)
            return (f"rng_snapshot: no snapshot {rel} yet; run pytest with "
                    f"--rng-snapshot-update to write it"
                    + (f" (and note: git ignores it, by {why}, so it was never committed: "
                       f"{_ADVICE})" if why else ""))
        try:
            d = rngtrace.diff(rngtrace.load(path), log, labels=("snapshot", "this run"))
        except rngtrace.IncomparableLogsError as e:
            return (f"rng_snapshot: {rel} cannot be compared with this run ({e}); run "
                    f"pytest with --rng-snapshot-update to write it again")
        if d.identical:
            return None
        return (f"rng_snapshot: the random stream differs from {rel}\n\n{d.report()}\n\n"
                f"(if the change is intended: pytest --rng-snapshot-update)")

    def _write(self, log: Log, path: str) -> None:
        import rngtrace

        os.makedirs(os.path.dirname(path), exist_ok=True)
        rngtrace.save(log, path)
        self.written.append(path)
        self._request.config.stash.setdefault(_WRITTEN, []).append(path)


@pytest.fixture
def rng_snapshot(request: pytest.FixtureRequest) -> Any:
    """Record a block and compare its random draws with a stored snapshot.

    ``with rng_snapshot(): ...`` (or ``rng_snapshot("name", steps=N)``) records the
    block; see :mod:`rngtrace.pytest_plugin`.
    """
    return RngSnapshot(request)


_ADVICE = ("keep the snapshots out of that pattern: ignore /*.rngtrace.jsonl (the top "
           "directory only) or the directory your logs go to instead, or add the line "
           "'!**/__rng_snapshots__/**' after it")


def ignored_by_git(paths: Iterable[str], cwd: str) -> dict[str, str]:
    """The ``paths`` git ignores, each with the rule that does (``.gitignore:3:
    *.rngtrace.jsonl``); empty outside a repository or without git. Tracked files are
    never ignored."""
    paths = list(paths)
    try:
        r = subprocess.run(["git", "check-ignore", "-v", "-z", "--stdin"], cwd=cwd,
                           input="\0".join(paths).encode() + b"\0", capture_output=True,
                           check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if r.returncode not in (0, 1):  # 128: not a repository
        return {}
    fields = r.stdout.decode(errors="replace").split("\0")
    found = {}
    for i in range(0, len(fields) - 3, 4):
        source, line, pattern, path = fields[i:i + 4]
        if not pattern.startswith("!"):  # a negated pattern: not ignored
            found[path] = f"{source}:{line}: {pattern}"
    return found


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    written = config.stash.get(_WRITTEN, [])
    if written:
        terminalreporter.write_line(f"rngtrace: {plural(len(written), 'rng_snapshot file')} "
                                    "written")
    used = list(dict.fromkeys(config.stash.get(_USED, [])))
    ignored = ignored_by_git(used, str(config.rootpath)) if used else {}
    if ignored:
        rules = ", ".join(dict.fromkeys(ignored.values()))
        n = len(ignored)
        terminalreporter.write_line(
            f"rngtrace: WARNING: git ignores {plural(n, 'rng_snapshot file')} "
            f"({rules}): 'git add' leaves {noun(n, 'it', 'them')} out, and CI fails "
            f"with 'no snapshot yet'; {_ADVICE}", yellow=True, bold=True)
