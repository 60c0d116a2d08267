"""Pausing a light-mode window between steps, for ``bench.py``'s paired steps only.

The windows ``rngtrace.record`` opens have no pause: their state goes ``"new"`` ->
``"opening"`` -> ``"recording"`` -> ``"stopped"``. The benchmark's row "steps paired with
paused ones" needs one window whose recording is switched off and on between steps, with
its wrapper of ``nn.Module.__call__`` still in place: neighbouring steps then see the same
machine, which cancels the drift of a shared one (see docs/benchmarks.md).
"""

from __future__ import annotations

import threading

from rngtrace.recording.modulelevel.recorder import ModuleRecorder


class PausableModuleRecorder(ModuleRecorder):
    """``record(level="module")`` with :meth:`set_paused`, for benchmarks.

    Paused, the window's own thread is taken for another thread: module calls pass
    through the wrapper (noted as called, nothing read), optimizer steps and reseeds are
    not counted, and what runs is charged to nothing. A paused call costs the wrapper's
    pass-through and the note in ``called`` (one dictionary store), where the window's
    ``"paused"`` state this replaces skipped the note.
    """

    def __init__(self) -> None:
        super().__init__()
        self._paused = False

    def set_paused(self, paused: bool) -> None:
        """Pause or resume, in the window's thread and between module calls."""
        if self._state != "recording":
            return
        self._paused = paused
        self._thread = 0 if paused else threading.get_ident()
        self._still = False
        self._q.reset()

    def _live(self) -> bool:
        return not self._paused and super()._live()
