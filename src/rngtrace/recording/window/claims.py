"""One open window per process: claiming it, letting it go, and forked children.

Windows cannot be nested or run concurrently; the claim is per process, so that a
forked child (a DataLoader worker) may open its own while the window it inherited turns
inert there (:meth:`~.window.Window._forked`).
"""

from __future__ import annotations

import os
from typing import Protocol

from ...errors import RecordError


class Window(Protocol):
    """What a claim needs of a window (:class:`~.window.Window`)."""

    def _forked(self) -> None: ...  # in a forked child: the parent's window turns inert


_claims: dict[int, Window] = {}  # pid -> the process's open window


def claim_window(window: Window) -> None:
    """Make ``window`` this process's open window; refuse a second one (windows cannot
    be nested or run concurrently). A window claimed by the parent of a forked child
    (a DataLoader worker) does not count in the child: claims are per process."""
    # dict.setdefault is atomic: no lock, which an interrupt could leave held
    if _claims.setdefault(os.getpid(), window) is not window:
        raise RecordError("record() windows cannot be nested or run concurrently")


def release_window(window: Window) -> None:
    """Let the claim go, if ``window`` holds it (only the owner removes its claim)."""
    if _claims.get(os.getpid()) is window:
        del _claims[os.getpid()]


def active_window() -> Window | None:
    """This process's open window, if any."""
    return _claims.get(os.getpid())


def _in_child() -> None:
    """After a fork: the parent's window is not this process's; it turns inert here."""
    for pid in list(_claims):
        if pid != os.getpid():
            _claims.pop(pid)._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
