"""The working tree's git-ignored files, linked into a side's copy (rngtrace.cli.ignored)."""

from __future__ import annotations

import os
import subprocess

import pytest

from rngtrace.cli import ignored
from rngtrace.cli.ignored import changed, link_ignored, list_ignored

FILES = ["data/a.txt", "data/sub/b.txt", "data/__pycache__/c.pyc", "model.ckpt",
         ".venv/pyvenv.cfg", "src/__pycache__/x.pyc", "src/m.py"]


@pytest.fixture
def top(tmp_path):
    """A repository ignoring a data directory, checkpoints, caches and a venv."""
    top = tmp_path / "top"
    for name in FILES:
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(name)
    (top / ".gitignore").write_text("data/\n*.ckpt\n__pycache__/\n.venv/\n")
    for args in (["init", "-q"], ["add", ".gitignore", "src/m.py"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=top, check=True, capture_output=True)
    return top


@pytest.mark.slow  # starts git
def test_list_leaves_out_caches_and_virtual_environments(top):
    found = list_ignored(str(top))
    assert found.entries == ("data/", "model.ckpt")
    assert found.left_out == (".venv/", "src/__pycache__/")
    assert found.describe() == "data/, model.ckpt"
    assert found.describe(limit=1) == "data/ and 1 more"


@pytest.mark.slow  # starts git
def test_link_mirrors_directories_and_the_sides_own_files_win(top, tmp_path):
    dest = tmp_path / "copy"
    dest.mkdir()
    (dest / "model.ckpt").write_text("the revision's own")
    made = link_ignored(list_ignored(str(top)), str(dest))
    # data/ is a real directory of the copy (a file created there is the copy's), its
    # files links to the working tree's; its __pycache__ is left out
    assert os.path.isdir(dest / "data") and not os.path.islink(dest / "data")
    assert sorted(os.listdir(dest / "data")) == ["a.txt", "sub"]
    assert os.readlink(dest / "data" / "a.txt") == str(top / "data" / "a.txt")
    assert (dest / "data" / "sub" / "b.txt").read_text() == "data/sub/b.txt"
    assert (dest / "model.ckpt").read_text() == "the revision's own"
    assert (made.links, made.whole) == (2, [])  # a.txt and sub/b.txt
    assert changed(made) == []
    (top / "data" / "a.txt").write_text("written through a link")
    assert changed(made) == [str(top / "data" / "a.txt")]


@pytest.mark.slow  # starts git
def test_link_past_the_limit_links_a_directory_whole(top, tmp_path, monkeypatch):
    monkeypatch.setattr(ignored, "LINK_LIMIT", 2)  # data/ holds 3 entries
    dest = tmp_path / "copy"
    dest.mkdir()
    made = link_ignored(list_ignored(str(top)), str(dest))
    assert os.readlink(dest / "data") == str(top / "data")
    assert made.whole == [str(top / "data")] and made.links == 2  # data, model.ckpt
    (top / "data" / "new.txt").write_text("a file created in the linked directory")
    assert str(top / "data") in changed(made)  # the directory's time stamp moved
