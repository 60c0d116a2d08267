"""The sides compare and bisect run in (rngtrace.cli.checkouts): symbolic links copied
from the repository are made to reach the copy."""

from __future__ import annotations

import os

from rngtrace.cli.checkouts import repoint_links


def test_links_into_the_repository_point_into_the_copy(tmp_path):
    top, dest, outside = tmp_path / "top", tmp_path / "copy", tmp_path / "shared"
    for d in (top / "cfg", dest / "cfg", outside):
        d.mkdir(parents=True)
    links = {
        "abs_in": str(top / "value.txt"),       # absolute, into the tree: into the copy
        "cfg/up": "../value.txt",                # relative, inside the tree: as it is
        "cfg/away": "../../shared/data.bin",     # relative, leaving the tree: absolute
        "abs_out": str(outside / "data.bin"),    # absolute, outside the tree: as it is
        "top_itself": str(top),                  # the tree's top: the copy's
    }
    for name, target in links.items():
        os.symlink(target, dest / name)
    moved = repoint_links(str(top), str(dest), sorted(links))
    assert moved == ["abs_in", "top_itself"]
    assert os.readlink(dest / "abs_in") == str(dest / "value.txt")
    assert os.readlink(dest / "top_itself") == str(dest)
    assert os.readlink(dest / "cfg" / "up") == "../value.txt"
    assert os.readlink(dest / "cfg" / "away") == str(outside / "data.bin")
    assert os.readlink(dest / "abs_out") == str(outside / "data.bin")


def test_an_absolute_link_naming_the_tree_through_another_link(tmp_path):
    top, dest = tmp_path / "top", tmp_path / "copy"
    top.mkdir()
    dest.mkdir()
    os.symlink(top, tmp_path / "alias")  # the user reaches the tree as .../alias
    os.symlink(str(tmp_path / "alias" / "value.txt"), dest / "link")
    assert repoint_links(str(top), str(dest), ["link"]) == ["link"]
    assert os.readlink(dest / "link") == str(dest / "value.txt")
