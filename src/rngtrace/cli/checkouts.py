"""The two sides ``rngtrace compare`` runs: revisions, the working tree, or directories.

A name is resolved to a :class:`Side` by :func:`resolve`: a git revision is exported
(``git archive``) into a temporary directory; the working tree (``.``, or a missing
second name) is copied file by file (what ``git ls-files -co --exclude-standard``
lists: tracked and untracked files, uncommitted changes included, ignored files not)
into a temporary directory; any other directory is used as it is. Nothing here writes
to the repository: no worktree is registered, no index, stash or branch is touched, so
even a run killed with ``kill -9`` leaves only temporary directories behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass

from ..errors import RngtraceError

WORKING_TREE = "working tree"


@dataclass(frozen=True)
class Side:
    """One of the two runs: its label, where its code is, the directory it runs in, and
    the source tree it stands for (absolute script paths inside it are mapped)."""

    label: str
    root: str
    cwd: str
    source: str


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


def make_side(repo: Repo, name: str, kind: str, where: str, label: str, base: str) -> Side:
    """The directory one side runs in: an export, a copy, or the directory itself."""
    if kind == "dir":
        return Side(label, where, where, where)
    assert repo.top is not None
    dest = tempfile.mkdtemp(prefix="side-", dir=base)
    if kind == "revision":
        print(f"rngtrace compare: exporting {name} ({where[:12]}) to {dest}", file=sys.stderr,
              flush=True)
        _export(repo.top, where, dest)
    else:
        n = _copy_tree(repo.top, dest)
        print(f"rngtrace compare: copied the working tree ({n:,} files, uncommitted "
              f"changes included) to {dest}", file=sys.stderr, flush=True)
    cwd = os.path.normpath(os.path.join(dest, repo.rel))
    return Side(label, dest, cwd if os.path.isdir(cwd) else dest, repo.top)


def _export(top: str, commit: str, dest: str) -> None:
    """``git archive COMMIT`` unpacked into ``dest``."""
    proc = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=top,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            if hasattr(tarfile, "tar_filter"):
                tar.extractall(dest, filter="tar")
            else:  # Python < 3.10.12 has no filters; the archive is the user's own
                tar.extractall(dest)
    except tarfile.TarError as e:
        raise RngtraceError(f"compare: cannot export {commit[:12]}: {e}") from None
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        proc.wait()
    if proc.returncode:
        raise RngtraceError(f"compare: cannot export {commit[:12]}: {err.strip()}")


def _copy_tree(top: str, dest: str) -> int:
    """Copy the working tree's tracked and untracked (not ignored) files; their count."""
    r = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=top,
                       capture_output=True, check=False)
    if r.returncode:
        raise RngtraceError("compare: cannot list the working tree's files: "
                            + r.stderr.decode(errors="replace").strip())
    n = 0
    for rel in dict.fromkeys(r.stdout.decode("utf-8", "surrogateescape").split("\0")):
        src = os.path.join(top, rel)
        if not rel or not os.path.lexists(src):  # deleted but still tracked
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.isdir(src) and not os.path.islink(src):  # a submodule
            shutil.copytree(src, out, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            shutil.copy2(src, out, follow_symlinks=False)
        n += 1
    return n


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
