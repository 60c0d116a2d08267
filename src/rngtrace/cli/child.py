"""What a run started by ``compare`` or ``bisect`` does for them: it dies with its
parent, and it writes nothing into the user's working tree.

``rngtrace run`` calls :func:`watch_parent` and :func:`install_guard` first; both do
nothing unless the parent asked for them in the environment (and both take their
variable out of it, so that the program and its own children never see it).

**Dying with the parent.** The parent may die in any way, ``kill -9`` included, which
leaves it no chance to stop its runs. On Linux the run asks the kernel for SIGTERM
when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread polls the
parent's pid. SIGTERM ends the program as ``rngtrace run`` ends it on SIGTERM; then
:func:`orphaned` tells ``run`` to kill its process group, so that what the program
started goes too. A program stuck in C code ends at its next Python line.

**The read-only guard.** Each side's copy reaches the working tree's git-ignored
files through symbolic links (:mod:`.ignored`). Python writes through them are seen by
an audit hook (:func:`sys.addaudithook`): a write to a file that is a link into the
working tree replaces the link with a copy first (copy on write), so the program
writes its own copy, as it would in its own tree; any other change in the working
tree (a new file in a directory linked whole, a rename, an absolute path into it) is
refused with :class:`PermissionError`. Writes from C code (a C++ library opening the
file itself) are not seen here; the parent compares the linked files' stamps after
the run and reports any change.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

PARENT_ENV = "RNGTRACE_PARENT"  # the pid the run must not outlive
GUARD_ENV = "RNGTRACE_GUARD"  # JSON: {"protect": TREE, "allow": [PATHS]}

_PR_SET_PDEATHSIG = 1


def watch_parent() -> int | None:
    """Die (by SIGTERM) when the process that started this one dies; its pid, or None
    when no parent asked for it."""
    value = os.environ.pop(PARENT_ENV, None)
    if not value or not value.isdecimal():
        return None
    parent = int(value)
    if not _death_signal():
        threading.Thread(target=_poll, args=(parent,), daemon=True,
                         name="rngtrace-parent-watch").start()
    if os.getppid() != parent:  # it died before the death signal was set
        os.kill(os.getpid(), signal.SIGTERM)
    return parent


def _death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _poll(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def orphaned(parent: int | None) -> bool:
    """Whether the watched parent is gone."""
    return parent is not None and os.getppid() != parent


def end_my_group() -> None:
    """Kill this process's group (what the program started, and this process), when
    this process leads it (compare and bisect start each run in its own session)."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)


def guard_env(protect: str, allow: list[str]) -> dict[str, str]:
    """The environment entry asking a run to guard ``protect`` (a directory), except
    the paths starting with one of ``allow`` (the log it writes there)."""
    return {GUARD_ENV: json.dumps({"protect": protect, "allow": allow})}


def install_guard() -> None:
    """Install the read-only guard when the parent asked for it (see the module's doc)."""
    value = os.environ.pop(GUARD_ENV, None)
    if not value:
        return
    try:
        spec = json.loads(value)
        guard = _Guard(str(spec["protect"]), [str(a) for a in spec["allow"]])
    except (ValueError, KeyError, TypeError):
        return
    sys.addaudithook(guard)


# audit event -> (positions of its path arguments, positions of its dir_fd arguments,
# whether the call follows a link at the end of the path to what it points to)
_EVENTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], bool]] = {
    "open": ((0,), (), True), "os.truncate": ((0,), (), True),
    "os.chmod": ((0,), (2,), True), "os.utime": ((0,), (3,), True),
    "os.chown": ((0,), (3,), True), "os.remove": ((0,), (1,), False),
    "os.rmdir": ((0,), (1,), False), "os.mkdir": ((0,), (2,), False),
    "os.rename": ((0, 1), (2, 3), False), "os.symlink": ((1,), (2,), False),
    "os.link": ((1,), (2, 3), False), "shutil.rmtree": ((0,), (1,), False),
}
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Guard:
    """The audit hook: a write into ``protect`` is made on a copy, or refused."""

    def __init__(self, protect: str, allow: list[str]) -> None:
        self._root = os.path.realpath(protect)
        self._allow = tuple(os.path.realpath(a) for a in allow)
        self._busy = threading.local()

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        spec = _EVENTS.get(event)
        if spec is None or getattr(self._busy, "on", False):
            return
        paths, dir_fds, follow = spec
        if any(i < len(args) and args[i] not in (None, -1) for i in dir_fds):
            return  # relative to an open directory (shutil.rmtree's way): not resolvable
        flags = args[2] if event == "open" and len(args) > 2 else 0
        if event == "open" and not (isinstance(flags, int) and flags & _WRITING):
            return
        self._busy.on = True
        try:
            for i in paths:
                path = args[i] if i < len(args) else None
                if isinstance(path, (str, bytes, os.PathLike)):
                    self._check(os.fsdecode(path), follow, bool(flags & os.O_TRUNC))
        finally:
            self._busy.on = False

    def _inside(self, path: str) -> bool:
        if path.startswith(self._allow):
            return False
        return path == self._root or path.startswith(self._root.rstrip(os.sep) + os.sep)

    def _check(self, path: str, follow: bool, truncate: bool) -> None:
        full = os.path.abspath(path)
        parent = os.path.realpath(os.path.dirname(full))
        if follow:
            real = os.path.realpath(full)
            if not self._inside(real):
                return
            if os.path.islink(full) and not self._inside(parent):
                _copy_on_write(full, real, truncate)  # a link of the copy: its own file
                return
        elif not self._inside(os.path.join(parent, os.path.basename(full))):
            return
        raise PermissionError(errno.EACCES, "rngtrace: a run under compare or bisect may "
                              f"not change your working tree ({self._root}): write in the "
                              "run's own directory (a relative path) or outside the tree",
                              path)


def _copy_on_write(link: str, target: str, truncate: bool) -> None:
    """Replace ``link`` by a copy of the file it points to (an empty file when the
    write truncates it anyway)."""
    tmp = f"{link}.rngtrace-copy"
    if truncate or not os.path.isfile(target):
        open(tmp, "wb").close()
    else:
        shutil.copy2(target, tmp)
    os.replace(tmp, link)
