"""``rngtrace bisect`` on a real repository of 22 commits, and its errors (the search
itself: test_search.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

import rngtrace
from rngtrace.cli import main
from rngtrace.cli.bisect import first_parent_line

TRAIN = """\
{broken}import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        {extra}
        self.b = nn.Linear(2, 1)


torch.manual_seed(0)
torch.rand(int(open("data/size.txt").read()))
Net()
# commit {k}
"""


def _git(repo: os.PathLike[str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def history(tmp_path):
    """22 commits c1..c22 of a tiny program reading its size from a git-ignored data
    directory; c14 adds a layer, c11 cannot run. Returns the repository and the shas."""
    r = tmp_path / "history"
    (r / "data").mkdir(parents=True)
    _git(r, "init", "-q")
    _git(r, "config", "user.email", "t@example.com")
    _git(r, "config", "user.name", "t")
    (r / ".gitignore").write_text("data/\n")
    (r / "data" / "size.txt").write_text("3\n")
    shas = {}
    for k in range(1, 23):
        (r / "train.py").write_text(TRAIN.format(
            k=k, broken="raise SystemExit('cannot run')\n" if k == 11 else "",
            extra="self.extra = nn.Linear(2, 2)" if k >= 14 else "pass"))
        _git(r, "add", "-A")
        _git(r, "commit", "-qm", f"c{k}" + (": an extra layer" if k == 14 else ""))
        shas[k] = _git(r, "rev-parse", "HEAD").strip()
    return r, shas


def _state(repo: os.PathLike[str]) -> tuple[str, ...]:
    with open(os.path.join(repo, ".git", "index"), "rb") as f:
        index = hashlib.sha256(f.read()).hexdigest()
    return (_git(repo, "status", "--porcelain", "--ignored"), index,
            _git(repo, "show-ref"), _git(repo, "worktree", "list"),
            _git(repo, "stash", "list"), " ".join(sorted(os.listdir(os.path.join(repo, ".git")))))


@pytest.mark.slow
def test_bisect_finds_the_commit_in_a_real_repository(history, tmp_path, capsys,
                                                      monkeypatch):
    repo, shas = history
    before = _state(repo)
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress, as on a terminal
    logs = tmp_path / "logs"
    assert main(["bisect", "HEAD~21", "HEAD", "-o", str(logs), "--", "train.py"]) == 0
    out, err = capsys.readouterr()
    short = {k: s[:10] for k, s in shas.items()}
    assert out.splitlines()[:5] == [
        f"rngtrace bisect: {shas[14]} is the first commit whose draws differ from HEAD~21's",
        f"  {short[14]} c14: an extra layer",
        f"  ran GOOD and 6 of the 21 commits after it; skipped 1 that could not run: "
        f"{short[11]} (exit code 1)",
        "",
        f"rngtrace diff: HEAD~21 and {short[14]} draw different random numbers.",
    ]
    assert f"Cause: module only in {short[14]}: extra (Linear), 2 draws" in out
    # one line per run, in the search's order (c2..c22 are 0..20: 9, 8, 14, 11, 12 as in
    # test_search.py's test_search_halves_and_skips_as_git_bisect_skip_does): GOOD, BAD,
    # then 5 runs, about log2(21) + 2
    steps = [re.sub(r" \(\d+\.\d+s\)", "", line) for line in err.splitlines()
             if line.startswith("rngtrace bisect: [")]
    assert steps == [
        f"rngtrace bisect: [GOOD] {short[1]} 'c1': 5 draws",
        f"rngtrace bisect: [BAD] {short[22]} 'c22': differs: module only in {short[22]}: "
        "extra (Linear), 2 draws; about 5 more",
        f"rngtrace bisect: [1] {short[11]} 'c11': cannot run (exit code 1): skipped; about "
        "5 more",
        f"rngtrace bisect: [2] {short[10]} 'c10': draws as GOOD (5 draws); about 4 more",
        f"rngtrace bisect: [3] {short[16]} 'c16': differs: module only in {short[16]}: "
        "extra (Linear), 2 draws; about 3 more",
        f"rngtrace bisect: [4] {short[13]} 'c13': draws as GOOD (5 draws); about 2 more",
        f"rngtrace bisect: [5] {short[14]} 'c14: an extra layer': differs: module only in "
        f"{short[14]}: extra (Linear), 2 draws",
    ]
    assert ("rngtrace bisect: linking the working tree's git-ignored data/ into each "
            "commit's copy, read-only (--no-ignored leaves them out)") in err
    assert set(os.listdir(logs)) == {f"{short[14]}.rngtrace.jsonl", "HEAD~21.rngtrace.jsonl"}
    # 5 draws: torch.rand(3), the size read from data/ (1 draw), then Net's a and b (2
    # draws each); c14 adds extra's 2 between them
    good = rngtrace.load(logs / "HEAD~21.rngtrace.jsonl")
    assert [d.target for d in good.draws] == [None, "a.weight", "a.bias", "b.weight",
                                              "b.bias"]
    assert good.draws[0].shape == (3,)
    found = rngtrace.load(logs / f"{short[14]}.rngtrace.jsonl")
    assert len(found.draws) == 7 and found.draws[3].target == "extra.weight"
    assert _state(repo) == before  # no bisect state, no ref, index and tree untouched

    # BAD drawing as GOOD: nothing to find, exit 1 (c1 and c2 differ in a comment)
    assert main(["bisect", "HEAD~21", "HEAD~20", "--json", "train.py"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["first"] is None and data["candidates"] == []
    assert [(t["commit"], t["result"]) for t in data["tested"]] == [(shas[2], "same")]
    assert _state(repo) == before


@pytest.mark.slow  # starts git
def test_bisect_errors_are_one_line_exit_2(history, tmp_path, capsys, monkeypatch):
    repo, _ = history
    monkeypatch.chdir(repo)
    _git(repo, "branch", "side", "HEAD~3")
    _git(repo, "checkout", "-q", "side")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "on a side branch")
    _git(repo, "checkout", "-q", "-")
    for argv, words in (
        (["bisect", "HEAD", "HEAD~1", "train.py"], "GOOD (HEAD) is not an ancestor of BAD "
         "(HEAD~1): give an older GOOD (git merge-base GOOD BAD is one)"),
        (["bisect", "side", "HEAD", "train.py"], "GOOD (side) is not an ancestor of BAD"),
        (["bisect", "HEAD", "HEAD", "train.py"], "GOOD and BAD are the same commit"),
        (["bisect", "nope", "HEAD", "train.py"], "GOOD 'nope' is not a revision"),
        (["bisect", "HEAD~1", "HEAD"], "rngtrace bisect: which program?"),
        (["bisect", "HEAD~1"], "rngtrace bisect: which BAD revision?"),
        (["bisect", "HEAD~1", "HEAD", "python", "train.py"], "write: rngtrace bisect "
         "HEAD~1 HEAD train.py"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith("rngtrace: error: "), err
        assert words in err, err
    monkeypatch.chdir(tmp_path)
    assert main(["bisect", "HEAD~1", "HEAD", "train.py"]) == 2
    assert "not inside a git repository" in capsys.readouterr().err


@pytest.mark.slow  # starts git
def test_the_line_searched_is_bads_first_parent_line_from_good(tmp_path):
    """m1 m2 (side: s1 s2) m3, merge of side, m4: from m1 the line is m2, m3, the merge
    (one step for s1 and s2), m4; from s1 on the merged branch, the merge and m4."""
    r = tmp_path / "merges"
    r.mkdir()
    _git(r, "init", "-q")
    _git(r, "config", "user.email", "t@example.com")
    _git(r, "config", "user.name", "t")
    for args in (["m1"], ["m2"], ["-b", "side"], ["s1"], ["s2"], ["-"], ["m3"], ["merge"],
                 ["m4"]):
        if args[0] in ("-b", "-"):
            _git(r, "checkout", "-q", *args)
        elif args == ["merge"]:
            _git(r, "merge", "-q", "--no-ff", "side", "-m", "merge side")
        else:
            _git(r, "commit", "-q", "--allow-empty", "-m", args[0])
    sha = {s: _git(r, "rev-parse", f":/^{s}").strip() for s in ("m1", "s1")}
    line = first_parent_line(str(r), sha["m1"], "HEAD")
    assert [(c.subject, c.merge) for c in line] == [
        ("m2", False), ("m3", False), ("merge side", True), ("m4", False)]
    assert [c.subject for c in first_parent_line(str(r), sha["s1"], "HEAD")] == [
        "merge side", "m4"]
