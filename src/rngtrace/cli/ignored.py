"""The working tree's git-ignored files (data, checkpoints, caches), linked into each
side's copy for ``compare`` and ``bisect``.

A revision's export and a copy of the working tree hold no ignored file, yet programs
read their dataset from ``data/`` or a checkpoint from ``ckpt/`` by a relative path.
:func:`list_ignored` lists what git ignores (``git ls-files -o -i --exclude-standard
--directory``: a wholly ignored directory is one entry), leaving out what a copy makes
for itself: ``__pycache__`` and ``*.pyc``, and virtual environments (a directory with
a ``pyvenv.cfg``; the runs use this Python anyway). :func:`link_ignored` makes them
reachable from a copy: an ignored directory becomes a real directory of the copy
holding a symbolic link per file (its subdirectories likewise), so that a file the
program creates there is the copy's; past :data:`LINK_LIMIT` links, a directory is
linked whole. What the side has itself (a file tracked at that revision) wins.

Read-only: a run writing through a link would write into the working tree. The run's
guard (:mod:`.child`) turns a Python write to a linked file into a write to a copy of
it and refuses any other change there; :func:`changed` compares each linked file's
stamp (size, modification time) after the run, for writes made from C code.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

from ..errors import RngtraceError

#: Links made per side before the rest of a directory is linked whole (one link).
LINK_LIMIT = 20_000

_CACHES = ("__pycache__",)


@dataclass(frozen=True)
class Ignored:
    """The working tree's ignored entries (relative paths, a directory's ending in
    ``/``), and those left out (caches, virtual environments)."""

    top: str
    entries: tuple[str, ...]
    left_out: tuple[str, ...] = ()

    def describe(self, limit: int = 4) -> str:
        """``data/, ckpt.pt and 2 more``."""
        more = len(self.entries) - limit
        return ", ".join(self.entries[:limit]) + (f" and {more} more" if more > 0 else "")


@dataclass
class Linked:
    """What :func:`link_ignored` made in one copy: the number of links, the
    directories linked whole, and the stamps of what the links point to."""

    links: int = 0
    whole: list[str] = field(default_factory=list)
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)


def list_ignored(top: str) -> Ignored:
    """The ignored entries of the working tree at ``top``."""
    r = subprocess.run(["git", "ls-files", "-z", "-o", "-i", "--exclude-standard",
                        "--directory", "--no-empty-directory"], cwd=top, capture_output=True,
                       check=False)
    if r.returncode:
        raise RngtraceError("cannot list the working tree's ignored files: "
                            + r.stderr.decode(errors="replace").strip())
    keep, out = [], []
    for rel in r.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not rel:
            continue
        name = rel.rstrip("/").rsplit("/", 1)[-1]
        src = os.path.join(top, rel)
        if (name in _CACHES or name.endswith((".pyc", ".pyo"))
                or os.path.isfile(os.path.join(src, "pyvenv.cfg"))):
            out.append(rel)
        else:
            keep.append(rel)
    return Ignored(top, tuple(keep), tuple(out))


def link_ignored(ignored: Ignored, dest: str) -> Linked:
    """Make ``ignored``'s entries reachable from the copy ``dest`` (see the module)."""
    made = Linked()
    for rel in ignored.entries:
        src = os.path.join(ignored.top, rel.rstrip("/"))
        out = os.path.join(dest, rel.rstrip("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if rel.endswith("/") and not os.path.islink(src):
            _mirror(src, out, made)
        else:
            _link(src, out, made)
    return made


def _link(src: str, out: str, made: Linked) -> None:
    if os.path.lexists(out):  # the side's own file wins
        return
    os.symlink(src, out)
    made.links += 1
    _stamp(src, made)


def _stamp(src: str, made: Linked) -> None:
    try:
        st = os.stat(src)
    except OSError:
        return
    made.stamps[src] = (st.st_size, st.st_mtime_ns)


def _mirror(src: str, out: str, made: Linked) -> None:
    """``out`` as a real directory holding links to ``src``'s files; ``src`` linked
    whole when it holds more entries than the links left to make."""
    try:
        entries = list(os.scandir(src))
    except OSError:
        return
    if not os.path.lexists(out) and made.links + len(entries) > LINK_LIMIT:
        _link(src, out, made)
        made.whole.append(src)
        return
    if os.path.islink(out) or (os.path.lexists(out) and not os.path.isdir(out)):
        return
    os.makedirs(out, exist_ok=True)
    for e in entries:
        if e.name in _CACHES or e.name.endswith((".pyc", ".pyo")):
            continue
        target = os.path.join(out, e.name)
        if e.is_dir(follow_symlinks=False):
            if not os.path.isfile(os.path.join(e.path, "pyvenv.cfg")):
                _mirror(e.path, target, made)
        else:
            _link(e.path, target, made)


def changed(made: Linked) -> list[str]:
    """The linked files whose size or modification time changed since they were
    linked (written to through a link, by code the guard cannot see)."""
    found = []
    for path, stamp in made.stamps.items():
        try:
            st = os.stat(path)
        except OSError:
            found.append(path)
            continue
        if (st.st_size, st.st_mtime_ns) != stamp:
            found.append(path)
    return found
