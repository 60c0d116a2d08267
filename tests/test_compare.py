"""``rngtrace diff`` and ``rngtrace compare`` on the command line, run for real."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

import rngtrace
from helpers import cli
from rngtrace.cli import main

SCRIPT = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)


torch.manual_seed(0)
Net()
print("built")
"""


_rngtrace = cli


def _log(path: os.PathLike[str], extra: bool) -> str:
    torch.manual_seed(0)
    with rngtrace.record() as log:
        nn.ModuleDict({"a": nn.Linear(2, 2), **({"x": nn.Linear(2, 2)} if extra else {}),
                       "b": nn.Linear(2, 2)})
    log.save(path)
    return str(path)


@pytest.mark.slow
def test_diff_verb_exit_codes_and_json(tmp_path, capsys):
    a = _log(tmp_path / "a.jsonl", extra=False)
    a2 = _log(tmp_path / "a2.jsonl", extra=False)
    b = _log(tmp_path / "b.jsonl", extra=True)
    other = _rngtrace("diff", a, b)  # once for real, in a subprocess
    assert other.returncode == 1, other.stderr
    assert "Cause: module only in b.jsonl: x (Linear), 2 draws" \
        in other.stdout
    assert main(["diff", a, a2]) == 0
    assert capsys.readouterr().out.startswith(
        "rngtrace diff: a.jsonl and a2.jsonl drew the same values")
    assert main(["diff", "--json", a, b]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["causes"][0]["kind"] == "inserted" and data["causes"][0]["module"] == "x"


def test_diff_verb_bad_input_is_one_line_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not a log\n")
    assert main(["diff", str(junk), str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rngtrace: error: ")
    assert main(["diff", str(tmp_path / "missing.jsonl")]) == 2  # one file only


def _git(repo: os.PathLike[str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def repo(tmp_path):
    """A repository with two commits: the second adds an unused module; then local edits."""
    r = tmp_path / "repo"
    r.mkdir()
    _git(r, "init", "-q")
    _git(r, "config", "user.email", "t@example.com")
    _git(r, "config", "user.name", "t")
    (r / "train.py").write_text(SCRIPT)
    _git(r, "add", "train.py")
    _git(r, "commit", "-qm", "one")
    (r / "train.py").write_text(SCRIPT.replace(
        "        self.b = nn.Linear(4, 2)\n",
        "        self.extra = nn.Linear(4, 4)\n        self.b = nn.Linear(4, 2)\n"))
    _git(r, "commit", "-qam", "two: an extra layer")
    # the user's own uncommitted work, staged and not, which compare must not touch
    (r / "train.py").write_text(SCRIPT + "# work in progress\n")
    (r / "notes.txt").write_text("staged\n")
    _git(r, "add", "notes.txt")
    return r


def _state(repo: os.PathLike[str]) -> tuple[str, str, str, str]:
    with open(os.path.join(repo, ".git", "index"), "rb") as f:
        index = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(repo, "train.py")) as f:
        script = f.read()
    return (_git(repo, "status", "--porcelain"), index, script,
            _git(repo, "worktree", "list"))


@pytest.mark.slow
def test_compare_two_revisions_in_temporary_copies(repo):
    before = _state(repo)
    r = _rngtrace("compare", "HEAD~1", "HEAD", "--", "train.py", cwd=repo)
    assert r.returncode == 1, r.stderr
    assert "Cause: module only in HEAD: extra (Linear), 2 draws" \
        in r.stdout
    assert "  at train.py:9: self.extra = nn.Linear(4, 4)" in r.stdout
    # progress while the runs go, with the program's own output relayed
    assert "[1/2 HEAD~1] built" in r.stderr and "[2/2 HEAD] built" in r.stderr
    assert "rngtrace compare: [2/2 HEAD] finished in " in r.stderr
    worktrees = re.findall(r"running train\.py in (\S+)", r.stderr)
    assert len(worktrees) == 2 and not any(os.path.exists(w) for w in worktrees)
    assert _state(repo) == before  # working tree, index and worktree list untouched
    assert sorted(os.listdir(repo)) == [".git", "notes.txt", "train.py"]


@pytest.mark.slow
def test_compare_two_directories_keeps_logs_with_o(tmp_path, capsys, monkeypatch):
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "old", "new", "-o", "logs", "train.py"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("rngtrace diff: old and new drew the same values in the same "
                              "places (4 draws, 1 generator).")
    # the logs are named after the sides, so that a later diff of them says which is which
    assert sorted(os.listdir(tmp_path / "logs")) == ["new.rngtrace.jsonl", "old.rngtrace.jsonl"]
    assert len(rngtrace.load(tmp_path / "logs" / "old.rngtrace.jsonl").draws) == 4
    assert main(["diff", "logs/old.rngtrace.jsonl", "logs/new.rngtrace.jsonl"]) == 0
    assert capsys.readouterr().out.startswith("rngtrace diff: old and new drew the same")


@pytest.mark.slow
def test_compare_errors_are_one_line_exit_2(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["compare", "HEAD", "no-such-rev", "train.py"]) == 2
    assert main(["compare", "HEAD~1", "HEAD"]) == 2  # no program
    monkeypatch.chdir(tmp_path)  # not a repository, and no such directories
    assert main(["compare", "HEAD~1", "HEAD", "train.py"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rngtrace: error: compare: 'no-such-rev' is neither a revision of this repository "
        "nor a directory",
        "rngtrace: error: rngtrace compare: which program? (see 'rngtrace compare --help')",
        err[2],
    ]
    assert err[2] == ("rngtrace: error: compare: HEAD~1: no such directory (and not inside a "
                      "git repository, so not a revision)")
    assert _git(repo, "worktree", "list").count("\n") == 1


LIGHT = """\
import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5){extra}, nn.Dropout(0.5))
for _ in range(2):
    net(torch.ones(2, 4))
"""


@pytest.mark.slow
def test_compare_level_module_runs_the_light_mode(tmp_path, capsys, monkeypatch):
    """--level module reaches both runs (options after REV_B, as the others); the diff is
    at module granularity: a Dropout more, called in each pass, is inserted."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "net.py").write_text(LIGHT.format(extra=""))
    (tmp_path / "new" / "net.py").write_text(LIGHT.format(extra=", nn.Dropout(0.5)"))
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "old", "new", "--level", "module", "-o", "logs", "net.py"]) == 1
    out = capsys.readouterr().out
    a = rngtrace.load(tmp_path / "logs" / "old.rngtrace.jsonl")
    b = rngtrace.load(tmp_path / "logs" / "new.rngtrace.jsonl")
    assert a.level == b.level == "module"
    # the construction's draws are one outside record; then one per Dropout call
    assert [d.module for d in a.draws] == [None, "1", "2", "1", "2"]
    assert [d.module for d in b.draws] == [None, "1", "2", "3", "1", "2", "3"]
    assert "Cause: module only in new: 3 (Dropout)" in out  # by path: 1, 2 in both
    assert main(["compare", "old", "new", "--level", "kernel", "net.py"]) == 2
    assert "--level is 'op' or 'module', not 'kernel'" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_with_the_working_tree(repo, tmp_path, capsys, monkeypatch):
    """REV alone, 'REV .' and '. REV' compare with the working tree, uncommitted edits
    included (here: the extra layer of HEAD is not in the working tree's train.py...
    which is HEAD~1's plus a comment), without touching it."""
    (repo / "train.py").write_text(SCRIPT + "# work in progress\n")
    before = _state(repo)
    monkeypatch.chdir(repo)
    assert main(["compare", "HEAD", "-o", str(tmp_path / "logs"), "--", "train.py"]) == 1
    out, err = capsys.readouterr()
    assert "Cause: module only in HEAD: extra (Linear), 2 draws\n" in out, out
    assert "copied the working tree (2 files, uncommitted changes included) to " in err
    assert sorted(os.listdir(tmp_path / "logs")) == ["HEAD.rngtrace.jsonl",
                                                     "working-tree.rngtrace.jsonl"]
    assert main(["compare", "HEAD~1", ".", "train.py"]) == 0  # only a comment differs
    assert main(["compare", ".", "HEAD", "train.py"]) == 1
    assert _state(repo) == before
    assert sorted(os.listdir(repo)) == [".git", "notes.txt", "train.py"]


@pytest.mark.slow
def test_compare_safety_of_the_users_files(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    before = _state(repo)
    # -o naming an existing file: one line, nothing run
    assert main(["compare", "HEAD~1", "HEAD", "-o", "notes.txt", "train.py"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rngtrace: error: rngtrace compare: -o notes.txt exists and is not a directory (-o "
        "names a directory for the two logs)")
    # an absolute script path inside the repository runs each side's own copy: the two
    # revisions differ (run both as the working tree's file, they would be the same)
    assert main(["compare", "HEAD~1", "HEAD", "--", str(repo / "train.py")]) == 1
    assert "Cause: module only in HEAD: extra (Linear)" in capsys.readouterr().out
    # a name that is a revision and a directory: the revision, and it says so
    _git(repo, "branch", "old", "HEAD~1")
    (repo / "old").mkdir()
    (repo / "old" / "train.py").write_text("raise SystemExit('the directory ran')\n")
    assert main(["compare", "old", "HEAD", "train.py"]) == 1
    err = capsys.readouterr().err
    assert ("rngtrace compare: 'old' is both a revision and a directory: using the "
            "revision (write ./old for the directory)") in err
    assert "the directory ran" not in err
    _git(repo, "branch", "-D", "old")
    (repo / "old" / "train.py").unlink()
    (repo / "old").rmdir()
    assert _state(repo) == before


@pytest.mark.slow
def test_compare_sigterm_stops_the_program_and_cleans_up(repo):
    import signal
    import time

    loop = "import os, time, torch\ntorch.rand(1)\nprint('pid', os.getpid(), flush=True)\n" \
           "while True:\n    time.sleep(0.05)\n"
    (repo / "loop.py").write_text(loop)
    _git(repo, "add", "loop.py")
    _git(repo, "commit", "-qm", "loop")
    before = _state(repo)
    p = subprocess.Popen([sys.executable, "-m", "rngtrace", "compare", "HEAD", "HEAD", "--",
                          "loop.py"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if " pid " in line:
            break
    pid = int(lines[-1].split()[-1])
    copies = re.findall(r"to (\S+)\n", "".join(lines))
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    _, rest = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, rest
    assert rest.splitlines()[-1] == ("rngtrace compare: ended by SIGTERM: the runs were "
                                     "stopped and the temporary copies removed")
    with pytest.raises(ProcessLookupError):  # the program is gone, not orphaned
        os.kill(pid, 0)
    assert copies and not any(os.path.exists(c) for c in copies)
    assert not os.path.exists(os.path.dirname(copies[0]))  # the whole temp dir
    assert _state(repo) == before


DATA_SCRIPT = """\
import torch
n = int(open("data/size.txt").read()) + int(open("link.txt").read())
torch.rand(n)
open("data/stamp.txt", "a").write("appended\\n")   # a linked file: written on a copy
open("data/made.txt", "w").write("new\\n")          # a new file: the copy's own
print("drew", n, "stamp", open("data/stamp.txt").read().split())
"""


@pytest.fixture
def data_repo(tmp_path):
    """Two commits reading a git-ignored data directory by a relative path, and a file
    through a committed absolute link into the repository (1 at HEAD~1, 2 at HEAD)."""
    r = tmp_path / "data-repo"
    (r / "data").mkdir(parents=True)
    _git(r, "init", "-q")
    _git(r, "config", "user.email", "t@example.com")
    _git(r, "config", "user.name", "t")
    (r / ".gitignore").write_text("data/\n")
    (r / "data" / "size.txt").write_text("3\n")
    (r / "data" / "stamp.txt").write_text("kept\n")
    (r / "train.py").write_text(DATA_SCRIPT)
    (r / "value.txt").write_text("1\n")
    os.symlink(r / "value.txt", r / "link.txt")
    _git(r, "add", "-A")
    _git(r, "commit", "-qm", "one")
    (r / "value.txt").write_text("2\n")
    _git(r, "commit", "-qam", "two")
    return r


def _files(top: os.PathLike[str]) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, f), top): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(top) if ".git" not in d.split(os.sep) for f in fs}


@pytest.mark.slow
def test_compare_reaches_ignored_data_read_only(data_repo, capsys, monkeypatch):
    """The ignored data/ is read through a relative path on both sides (linked, and
    said so); a write to a linked file writes the side's own copy; the committed
    absolute link reads each side's value.txt (4 and 5 values drawn: 3 + 1, 3 + 2); a
    big untracked file is announced (the limit lowered to 1,000 bytes here)."""
    from rngtrace.cli import checkouts

    (data_repo / "notes.bin").write_bytes(b"x" * 2000)  # untracked, not ignored
    before, files = _state(data_repo), _files(data_repo)
    monkeypatch.setattr(checkouts, "BIG_UNTRACKED", 1000)
    monkeypatch.chdir(data_repo)
    assert main(["compare", "HEAD~1", "--", "train.py"]) == 1
    out, err = capsys.readouterr()
    assert "Cause: shape changed: - draws (4,) in HEAD~1, (5,) in working tree\n" in out
    assert ("rngtrace compare: copying 2 kB of untracked files with the working tree (the "
            "largest: notes.bin, 2 kB); to leave such files out, list them in "
            ".git/info/exclude: ignored files are linked into the copy, not copied "
            "(--no-ignored leaves them out altogether)") in err
    assert err.count("rngtrace compare: 1 symbolic link into the repository now points "
                     "into the copy (link.txt)\n") == 2
    assert ("rngtrace compare: linked the working tree's git-ignored data/ into the "
            "copies, read-only (--no-ignored leaves them out)\n") in err
    assert "[1/2 HEAD~1] drew 4 stamp ['kept', 'appended']\n" in err
    assert "[2/2 working tree] drew 5 stamp ['kept', 'appended']\n" in err
    assert _state(data_repo) == before and _files(data_repo) == files  # nothing written
    # without the ignored files, the data is not there
    assert main(["compare", "HEAD~1", "HEAD", "--no-ignored", "train.py"]) == 2
    assert "No such file or directory: 'data/size.txt'" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_reports_a_write_the_guard_cannot_see(data_repo, capsys, monkeypatch):
    """A shell appends to the linked file: no Python write, so no copy on write; the
    stamps tell after the run, and compare stops with the file named (exit 2)."""
    (data_repo / "train.py").write_text("import os\nos.system('echo x >> data/stamp.txt')\n")
    monkeypatch.chdir(data_repo)
    assert main(["compare", ".", "HEAD", "--", "train.py"]) == 2
    err = capsys.readouterr().err
    assert "[2/2" not in err  # stopped after the first run
    assert err.splitlines()[-1] == (
        "rngtrace: error: compare: the run at working tree changed 1 git-ignored file of "
        "your "
        f"working tree through the links to it ({data_repo / 'data' / 'stamp.txt'}): "
        "written by code the read-only guard cannot see (C code opening the file itself); "
        "rerun with --no-ignored")


FAILING = """\
import torch
torch.rand(2)
{tail}
"""


@pytest.mark.slow
def test_compare_leads_with_a_failed_run_and_runs_a_module(tmp_path, capsys, monkeypatch):
    for name, tail in (("old", "raise RuntimeError('broken')"), ("new", "torch.rand(3)")):
        (tmp_path / name / "pkg").mkdir(parents=True)
        (tmp_path / name / "pkg" / "__init__.py").write_text("")
        (tmp_path / name / "pkg" / "job.py").write_text(FAILING.format(tail=tail))
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "old", "new", "--", "-m", "pkg.job"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (
        "rngtrace compare: the run at old failed (exit code 1; its output is above) after "
        "1 draw: the comparison below covers only what was recorded before")
    assert out.splitlines()[1] == "rngtrace diff: old and new draw different random numbers."
    assert "rngtrace compare: [1/2 old] running -m pkg.job in " in err
    assert "RuntimeError: broken" in err


@pytest.mark.slow
def test_compare_killed_by_kill_9_takes_its_program_with_it(repo):
    """The run dies with compare (a death signal), and so does what the program
    started (its process group); only the temporary directory stays."""
    import signal
    import time

    (repo / "loop.py").write_text(
        "import os, subprocess, time, torch\ntorch.rand(1)\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print('pids', os.getpid(), child.pid, flush=True)\n"
        "while True:\n    time.sleep(0.05)\n")
    p = subprocess.Popen([sys.executable, "-m", "rngtrace", "compare", "HEAD", "--",
                          "loop.py"], cwd=repo, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if " pids " in line:
            break
    pids = [int(x) for x in lines[-1].split()[-2:]]
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)
    base = os.path.dirname(re.findall(r"to (\S+)\n", "".join(lines))[0])
    shutil.rmtree(base)  # what kill -9 leaves: the temporary directory


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False
