"""The ``rng_snapshot`` fixture, driven through pytest's own ``pytester``."""

from __future__ import annotations

import json
import os

import pytest

pytest_plugins = ["pytester"]

TEST = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        EXTRA
        self.b = nn.Linear(4, 2)


def test_init(rng_snapshot):
    torch.manual_seed(0)
    with rng_snapshot():
        Net()
"""
SNAPSHOT = os.path.join("__rng_snapshots__", "test_model", "test_init.rngtrace.jsonl")


def _write(pytester: pytest.Pytester, extra: bool) -> None:
    line = "self.extra = nn.Linear(4, 4)" if extra else "pass"
    pytester.makepyfile(test_model=TEST.replace("EXTRA", line))


def test_snapshot_missing_written_passing_failing_updated(pytester):
    _write(pytester, extra=False)
    r = pytester.runpytest()  # no snapshot yet: a failure, nothing written
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*rng_snapshot: no snapshot __rng_snapshots__*test_init."
                            "rngtrace.jsonl yet; run pytest with --rng-snapshot-update*"])
    assert not (pytester.path / SNAPSHOT).exists()

    r = pytester.runpytest("--rng-snapshot-update")
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["rngtrace: 1 rng_snapshot file written"])
    first = (pytester.path / SNAPSHOT).read_bytes()

    pytester.runpytest().assert_outcomes(passed=1)  # the same stream: passes

    _write(pytester, extra=True)  # an extra layer moves everything built after it
    r = pytester.runpytest()
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([
        "*rng_snapshot: the random stream differs from __rng_snapshots__*",
        "rngtrace diff: snapshot and this run draw different random numbers.",
        "Cause: module only in this run: extra (Linear), 2 draws",
        "*(if the change is intended: pytest --rng-snapshot-update)",
    ])
    assert (pytester.path / SNAPSHOT).read_bytes() == first  # never rewritten unasked

    r = pytester.runpytest("--rng-snapshot-update")
    r.assert_outcomes(passed=1)
    assert (pytester.path / SNAPSHOT).read_bytes() != first
    pytester.runpytest().assert_outcomes(passed=1)


def test_unchanged_snapshot_is_not_rewritten_and_names_tell_blocks_apart(pytester):
    pytester.makepyfile(test_two="""
        import torch

        def test_blocks(rng_snapshot):
            torch.manual_seed(0)
            with rng_snapshot():
                torch.rand(2)
            with rng_snapshot():
                torch.rand(3)
            with rng_snapshot("named") as log:
                torch.randn(4)
            assert len(log.draws) == 1
    """)
    pytester.runpytest("--rng-snapshot-update").assert_outcomes(passed=1)
    where = pytester.path / "__rng_snapshots__" / "test_two"
    assert sorted(os.listdir(where)) == ["test_blocks.2.rngtrace.jsonl",
                                         "test_blocks.named.rngtrace.jsonl",
                                         "test_blocks.rngtrace.jsonl"]
    stamps = {n: (where / n).stat().st_mtime_ns for n in os.listdir(where)}
    r = pytester.runpytest("--rng-snapshot-update")
    r.assert_outcomes(passed=1)
    assert "rng_snapshot file" not in r.stdout.str()  # identical: nothing written
    assert {n: (where / n).stat().st_mtime_ns for n in os.listdir(where)} == stamps


def test_a_snapshot_of_rngtrace_0_1_is_reported_and_rewritten_on_update(pytester):
    _write(pytester, extra=False)
    pytester.runpytest("--rng-snapshot-update").assert_outcomes(passed=1)
    path = pytester.path / SNAPSHOT
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    del header["meta"]["cpu_state_digest"]  # as rngtrace 0.1 wrote it (blake2b states)
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    old = path.read_bytes()

    r = pytester.runpytest()
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*rng_snapshot: __rng_snapshots__*test_init.rngtrace.jsonl "
                            "cannot be compared with this run (snapshot digests CPU "
                            "generator states with blake2b-64*--rng-snapshot-update*"])
    assert path.read_bytes() == old
    pytester.runpytest("--rng-snapshot-update").assert_outcomes(passed=1)
    assert path.read_bytes() != old
    pytester.runpytest().assert_outcomes(passed=1)


def _git(pytester: pytest.Pytester, *args: str) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=pytester.path, check=True, capture_output=True)


@pytest.mark.slow  # starts git
def test_snapshots_ignored_by_git_are_warned_about_once(pytester):
    """'*.rngtrace.jsonl' in .gitignore hides the snapshots from 'git add': the missing
    snapshot's failure says so, and each run ends with one warning while it lasts."""
    _git(pytester, "init", "-q")
    (pytester.path / ".gitignore").write_text("*.rngtrace.jsonl\n")
    pytester.makepyfile(test_more="""
        import torch

        def test_a(rng_snapshot):
            torch.manual_seed(0)
            with rng_snapshot():
                torch.rand(2)

        def test_b(rng_snapshot):
            torch.manual_seed(0)
            with rng_snapshot():
                torch.rand(3)
    """)
    r = pytester.runpytest()
    r.assert_outcomes(failed=2)
    r.stdout.fnmatch_lines(["*rng_snapshot: no snapshot __rng_snapshots__*test_a."
                            "rngtrace.jsonl yet; run pytest with --rng-snapshot-update to "
                            "write it (and note: git ignores it, by .gitignore:1: "
                            "*.rngtrace.jsonl, so it was never committed: keep the "
                            "snapshots out of that pattern*"])
    warning = ("rngtrace: WARNING: git ignores 2 rng_snapshot files (.gitignore:1: "
               "*.rngtrace.jsonl): 'git add' leaves them out, and CI fails with 'no "
               "snapshot yet'; keep the snapshots out of that pattern: ignore "
               "/*.rngtrace.jsonl (the top directory only) or the directory your logs go "
               "to instead, or add the line '!**/__rng_snapshots__/**' after it")
    assert r.stdout.lines.count(warning) == 1
    r = pytester.runpytest("--rng-snapshot-update")
    r.assert_outcomes(passed=2)
    assert r.stdout.lines.count(warning) == 1
    # the advice followed: the snapshots are no longer ignored, and nothing is said
    (pytester.path / ".gitignore").write_text("*.rngtrace.jsonl\n!**/__rng_snapshots__/**\n")
    r = pytester.runpytest()
    r.assert_outcomes(passed=2)
    assert "WARNING" not in r.stdout.str()
