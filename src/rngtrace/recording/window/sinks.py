"""Where a window's draws go as they happen: memory, or a file streamed line by line.

:class:`Sink` is what a window writes to; :class:`MemorySink` keeps the records for the
log the window returns, :class:`rngtrace.logfile.FileSink` streams them to a file
(``record(path=...)``).
"""

from __future__ import annotations

from typing import Protocol

from ...log import Draw, Event, GeneratorInfo, Log


class Sink(Protocol):
    """Where a window's draws go as they happen (memory, or a file streamed line by line)."""

    def start(self, log: Log, gens: dict[str, GeneratorInfo]) -> None: ...
    def draw(self, draw: Draw) -> None: ...
    def draws(self, draws: list[Draw]) -> None: ...  # several in order, written together
    def event(self, event: Event) -> None: ...
    def finish(self, log: Log, patches: dict[int, Draw]) -> None: ...
    def close(self) -> None: ...  # a window that failed to open: let go, write no end


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

    def close(self) -> None:
        pass
