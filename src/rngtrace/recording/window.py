"""The window both recorders share: claiming it, the log's header, steps, where draws go."""

from __future__ import annotations

import datetime
import platform
import sys
import threading
from typing import Any, Protocol

import torch

from .._version import __version__
from ..errors import RecordError
from ..log import Draw, Event, GeneratorInfo, Log
from .distributed import rank_meta

_active_lock = threading.Lock()
_active: Any = None  # the open window (a Recorder or a light ModuleRecorder), or None

class Sink(Protocol):
    """Where a window's draws go as they happen (memory, or a file streamed line by line)."""

    def start(self, log: Log, gens: dict[str, GeneratorInfo]) -> None: ...
    def draw(self, draw: Draw) -> None: ...
    def draws(self, draws: list[Draw]) -> None: ...  # several in order, written together
    def event(self, event: Event) -> None: ...
    def finish(self, log: Log, patches: dict[int, Draw]) -> None: ...


class MemorySink:
    """Keeps draws in memory and hands them to the log when the window closes."""

    def __init__(self) -> None:
        self._draws: list[Draw] = []
        self._events: list[Event] = []

    def start(self, log: Log, gens: dict[str, GeneratorInfo]) -> None:
        pass

    def draw(self, draw: Draw) -> None:
        self._draws.append(draw)

    def draws(self, draws: list[Draw]) -> None:
        self._draws.extend(draws)

    def event(self, event: Event) -> None:
        self._events.append(event)

    def finish(self, log: Log, patches: dict[int, Draw]) -> None:
        for i, d in patches.items():
            self._draws[i] = d
        log.draws, log.events = self._draws, self._events


def header() -> dict[str, Any]:
    """What a log says about where it was made (``"dist"``: the rank in a distributed
    job, see :mod:`.distributed`)."""
    meta: dict[str, Any] = {
        "tool": "rngtrace",
        "rngtrace": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": list(sys.argv),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    dist = rank_meta()
    if dist is not None:
        meta["dist"] = dist
    return meta


def claim_window(window: Any, state: str) -> None:
    """Make ``window`` the process's open window; refuse a second entry or a second
    window (windows cannot be nested or run concurrently)."""
    global _active
    if state != "new":
        raise RecordError("a record() window can only be entered once")
    with _active_lock:
        if _active is not None:
            raise RecordError("record() windows cannot be nested or run concurrently")
        _active = window


def release_window(window: Any) -> None:
    global _active
    with _active_lock:
        if _active is window:
            _active = None


def check_steps(steps: int | None) -> int | None:
    """``steps`` as both recorders take it: a positive integer, or None for no limit."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or steps < 1):
        raise RecordError(f"steps must be a positive integer or None, not {steps!r}")
    return steps


def default_generators() -> dict[str, GeneratorInfo]:
    """The default generators' seeds as a window opens (a file's header records them)."""
    gens = {"default:cpu": GeneratorInfo("default:cpu", "cpu", torch.initial_seed())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):
            name = f"default:cuda:{i}"
            gens[name] = GeneratorInfo(name, f"cuda:{i}",
                                       torch.cuda.default_generators[i].initial_seed())
    return gens
