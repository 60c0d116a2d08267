"""The two sides ``rngtrace compare`` runs: revisions, the working tree, or directories.

A name is resolved by :func:`kind_of` and made a :class:`Side` by :func:`make_side`: a
git revision is exported (``git archive``) into a temporary directory; the working
tree (``.``, or a missing second name) is copied file by file (what ``git ls-files -co
--exclude-standard`` lists: tracked and untracked files, uncommitted changes included)
into a temporary directory; any other directory is used as it is. In a copy, the
working tree's ignored files are linked (:mod:`.ignored`), and a symbolic link that
points into the repository by an absolute path is made to point into the copy instead
(else the program would read, or write, the working tree's file through it); a
relative link that leaves the tree is made absolute, so that it still reaches what it
reached. Nothing here writes to the repository: no worktree is registered, no index,
stash or branch is touched, so even a run killed with ``kill -9`` leaves only
temporary directories behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import RngtraceError
from ..text import noun, plural
from .ignored import Ignored, Linked, link_ignored

WORKING_TREE = "working tree"

#: Untracked files (copied with the working tree) above this many bytes are announced,
#: with the way to leave them out.
BIG_UNTRACKED = 256 * 2**20


def _stderr(text: str) -> None:
    print(f"rngtrace compare: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Side:
    """One run: its label, where its code is, the directory it runs in, the source
    tree it stands for (absolute script paths inside it are mapped), and for a copy,
    the working tree it may not change and what was linked into it."""

    label: str
    root: str
    cwd: str
    source: str
    protect: str | None = None
    linked: Linked | None = None


@dataclass(frozen=True)
class Repo:
    """The git repository the command runs in (``top`` is None outside one)."""

    top: str | None
    rel: str  # the current directory, relative to top


def find_repo() -> Repo:
    try:
        r = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                           text=True, check=False)
    except OSError:
        return Repo(None, ".")
    if r.returncode != 0:
        return Repo(None, ".")
    top = os.path.realpath(r.stdout.strip())
    return Repo(top, os.path.relpath(os.path.realpath(os.getcwd()), top))


def is_revision(repo: Repo, name: str) -> str | None:
    """The commit ``name`` names in ``repo``, or None."""
    if repo.top is None or name.startswith("-"):
        return None
    r = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
                       cwd=repo.top, capture_output=True, text=True, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def kind_of(repo: Repo, name: str) -> tuple[str, str]:
    """``("revision", commit)``, ``("tree", top)`` or ``("dir", path)`` for a name given
    on the command line; a one-line error naming the real problem otherwise."""
    commit = is_revision(repo, name)
    isdir = os.path.isdir(name)
    if commit is not None:
        if isdir:
            print(f"rngtrace compare: {name!r} is both a revision and a directory: using "
                  f"the revision (write ./{name} for the directory)", file=sys.stderr)
        return "revision", commit
    if isdir:
        real = os.path.realpath(name)
        if repo.top is not None and real in (repo.top, os.path.realpath(os.getcwd())):
            return "tree", repo.top
        return "dir", os.path.abspath(name)
    if repo.top is None:
        raise RngtraceError(f"compare: {name}: no such directory (and not inside a git "
                            "repository, so not a revision)")
    if os.path.exists(name):
        raise RngtraceError(f"compare: {name!r} is a file, not a revision or a directory")
    raise RngtraceError(f"compare: {name!r} is neither a revision of this repository nor "
                        "a directory")


def make_side(repo: Repo, name: str, kind: str, where: str, label: str, base: str,
              ignored: Ignored | None = None, say: Callable[[str], None] = _stderr) -> Side:
    """The directory one side runs in: an export, a copy, or the directory itself;
    ``ignored`` entries are linked into a copy; ``say`` tells what is done."""
    if kind == "dir":
        return Side(label, where, where, where)
    assert repo.top is not None
    dest = tempfile.mkdtemp(prefix="side-", dir=base)
    if kind == "revision":
        say(f"exporting {name} ({where[:12]}) to {dest}")
        links = _export(repo.top, where, dest)
    else:
        n, links = _copy_tree(repo.top, dest, say)
        say(f"copied the working tree ({n:,} files, uncommitted changes included) to "
            f"{dest}")
    moved = repoint_links(repo.top, dest, links)
    if moved:
        say(f"{plural(len(moved), 'symbolic link')} into the repository now "
            f"{noun(len(moved), 'points', 'point')} into the copy ({', '.join(moved[:3])}"
            f"{', ...' if len(moved) > 3 else ''})")
    linked = link_ignored(ignored, dest) if ignored is not None else None
    cwd = os.path.normpath(os.path.join(dest, repo.rel))
    return Side(label, dest, cwd if os.path.isdir(cwd) else dest, repo.top, repo.top,
                linked)



def _export(top: str, commit: str, dest: str) -> list[str]:
    """``git archive COMMIT`` unpacked into ``dest``; the symbolic links it made."""
    proc = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=top,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    links: list[str] = []
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            if hasattr(tarfile, "tar_filter"):
                tar.extractall(dest, filter="tar")
            else:  # Python < 3.10.12 has no filters; the archive is the user's own
                tar.extractall(dest)
            links = [m.name for m in tar.getmembers() if m.issym()]
    except tarfile.TarError as e:
        raise RngtraceError(f"compare: cannot export {commit[:12]}: {e}") from None
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        proc.wait()
    if proc.returncode:
        raise RngtraceError(f"compare: cannot export {commit[:12]}: {err.strip()}")
    return links


def _copy_tree(top: str, dest: str, say: Callable[[str], None]) -> tuple[int, list[str]]:
    """Copy the working tree's tracked and untracked (not ignored) files; their count,
    and the symbolic links among them."""
    names = _ls_files(top, "-co")
    _announce_big(top, say)
    n, links = 0, []
    for rel in names:
        src = os.path.join(top, rel)
        if not os.path.lexists(src):  # deleted but still tracked
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.isdir(src) and not os.path.islink(src):  # a submodule
            shutil.copytree(src, out, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            shutil.copy2(src, out, follow_symlinks=False)
            if os.path.islink(src):
                links.append(rel)
        n += 1
    return n, links


def _ls_files(top: str, *which: str) -> list[str]:
    r = subprocess.run(["git", "ls-files", "-z", *which, "--exclude-standard"], cwd=top,
                       capture_output=True, check=False)
    if r.returncode:
        raise RngtraceError("compare: cannot list the working tree's files: "
                            + r.stderr.decode(errors="replace").strip())
    return [n for n in dict.fromkeys(r.stdout.decode("utf-8", "surrogateescape").split("\0"))
            if n]


def _announce_big(top: str, say: Callable[[str], None]) -> None:
    """Say so before copying more than :data:`BIG_UNTRACKED` bytes of untracked files."""
    sizes = []
    for rel in _ls_files(top, "-o"):
        try:
            sizes.append((os.lstat(os.path.join(top, rel)).st_size, rel))
        except OSError:
            continue
    total = sum(s for s, _ in sizes)
    if total <= BIG_UNTRACKED:
        return
    size, name = max(sizes)
    say(f"copying {_size(total)} of untracked files with the working tree (the largest: "
        f"{name}, {_size(size)}); to leave such files out, list them in .git/info/exclude: "
        "ignored files are linked into the copy, not copied (--no-ignored leaves them out "
        "altogether)")


def _size(n: int) -> str:
    """``312 MB``, ``2 kB``."""
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{max(n / 2**10, 1):,.0f} kB"


def repoint_links(top: str, dest: str, links: list[str]) -> list[str]:
    """Make the symbolic links copied from ``top`` to ``dest`` reach the copy: an
    absolute link into ``top`` points to the same path in ``dest``; a relative link
    that leaves the tree becomes absolute (to what it reached from ``top``). The
    links now pointing into the copy."""
    moved = []
    for rel in links:
        link = os.path.join(dest, rel)
        try:
            target = os.readlink(link)
        except OSError:
            continue
        origin = os.path.dirname(os.path.join(top, rel))
        resolved = os.path.normpath(os.path.join(origin, target))
        inside = _relative_to(resolved, top)
        if inside is None and os.path.isabs(target):
            # the path may name the tree through a symbolic link of its own
            inside = _relative_to(os.path.join(os.path.realpath(os.path.dirname(resolved)),
                                               os.path.basename(resolved)), top)
        if os.path.isabs(target) and inside is not None:
            new = os.path.join(dest, inside) if inside != "." else dest
            moved.append(rel)
        elif not os.path.isabs(target) and inside is None:
            new = resolved
        else:
            continue
        os.unlink(link)
        os.symlink(new, link)
    return moved


def _relative_to(path: str, top: str) -> str | None:
    if path == top or path.startswith(top.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, top)
    return None


def map_program(program: str, sides: list[Side]) -> list[str]:
    """The script each side runs: an absolute path inside the tree one side stands for
    is moved into each side's own copy (else both runs would run that one file)."""
    if not os.path.isabs(program):
        return [program, program]
    real = os.path.realpath(program)
    for side in sides:
        src = os.path.realpath(side.source)
        if real == src or real.startswith(src.rstrip(os.sep) + os.sep):
            rel = os.path.relpath(real, src)
            return [os.path.join(s.root, rel) for s in sides]
    return [program, program]
