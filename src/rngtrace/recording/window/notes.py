"""The window's note buffer: what a level noted at the moment of a draw, turned into
:class:`~rngtrace.Draw` records later, in one warm loop.

At the moment of a draw a level keeps only what that moment can tell (the states, read
and digested while they are in the cache, the stack, the tensor) as a *note*, a
``NamedTuple`` of its own (:class:`~..oplevel.recorder.OpNote`,
:class:`~..modulelevel.recorder.ModuleNote`). Notes are described (names resolved,
``Draw`` made) and handed to the sink together: every :data:`BATCH` notes, at each
optimizer step, before any other record (an event, a Python draw, a compiled graph's
draws) and when the window closes, so that the work is not done between the model's
kernels. :class:`NoteBuffer` is owned by the window and shared by both levels.

It keeps the numbering: :attr:`NoteBuffer.next` is the index of the next draw, counting
the draws handed to the sink and the notes waiting. Both change together wherever an
interrupt lands: a note is counted as it is kept, and a write that is interrupted
leaves the notes for the next write (nothing is lost or written twice).

>>> from rngtrace.recording.window.sinks import MemorySink
>>> buffer = NoteBuffer(MemorySink(), batch=2)
>>> buffer.add("a"), buffer.next, buffer.add("b"), buffer.next
(False, 1, True, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ...log import Draw
from .sinks import Sink

#: notes described and written together at most
BATCH = 256

N = TypeVar("N")


class NoteBuffer(Generic[N]):
    """Notes not yet written, and the index of the next draw (see the module doc)."""

    __slots__ = ("_notes", "_sink", "batch", "next")

    def __init__(self, sink: Sink, batch: int = BATCH) -> None:
        self._sink = sink
        self._notes: list[N] = []
        self.batch = batch  # notes kept before a write is due
        self.next = 0  # the index of the next draw (read only outside this class)

    def __len__(self) -> int:
        return len(self._notes)

    def add(self, note: N) -> bool:
        """Keep ``note`` as draw :attr:`next`; whether a write is due (a full batch)."""
        index = self.next
        try:  # the count and the notes agree, wherever an interrupt lands
            self.next = index + 1
            self._notes.append(note)
        except BaseException:
            self.next = index
            raise
        return len(self._notes) >= self.batch

    def write(self, describe: Callable[[list[N]], list[Draw]]
              ) -> tuple[list[N], list[Draw]]:
        """Describe the notes (``describe`` returns their draws, in order) and hand the
        draws to the sink; the notes and their draws (empty lists: nothing noted)."""
        notes = self._notes
        if not notes:
            return notes, []
        draws = describe(notes)
        try:  # written once: an interrupt leaves the notes for the next write
            self._notes = []
            self._sink.draws(draws)
        except BaseException:
            self._notes = notes
            raise
        return notes, draws

    def hand(self, draws: list[Draw]) -> None:
        """Hand ``draws``, numbered from :attr:`next`, to the sink now (the notes were
        written first): the count and the file agree, wherever an interrupt lands."""
        first = self.next
        try:
            self.next = first + len(draws)
            self._sink.draws(draws)
        except BaseException:
            self.next = first
            raise

    def clear(self) -> None:
        """Forget the notes (the window is over: they hold the user's objects)."""
        self._notes = []
