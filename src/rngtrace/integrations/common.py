"""What every integration does: save the fingerprint with a checkpoint, check it once
on resume, warn once, and record the first steps of the resumed run if asked."""

from __future__ import annotations

import warnings
from typing import Any

from .. import RestoreCheck, RngtraceError, check_restored, fingerprint

KEY = "rngtrace"  # where a checkpoint holds the fingerprint


class ResumeWarning(UserWarning):
    """A resumed training whose generators do not go on from the checkpoint's states."""


def rank() -> int:
    """This process's rank in a distributed job (0 outside one)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class Certifier:
    """The fingerprint of one training's generators across a checkpoint and a resume.

    ``objects`` and ``named`` are what :func:`rngtrace.fingerprint` walks, with what
    the framework adds at each call (its model, its DataLoader). ``record_steps``:
    record the resumed run's first N optimizer steps to ``record_path`` (the rank's own
    file in a distributed job), from the moment before the checkpoint is loaded.
    """

    def __init__(self, objects: tuple[Any, ...], named: dict[str, Any], record_steps: int = 0,
                 record_path: str | None = None) -> None:
        if isinstance(record_steps, bool) or not isinstance(record_steps, int) or (
                record_steps < 0):
            raise RngtraceError(f"record_steps must be 0 or more, not {record_steps!r}")
        self._objects, self._named = objects, named
        self.record_steps, self.record_path = record_steps, record_path
        self._before: Any = None
        self._window: Any = None
        self.result: RestoreCheck | None = None  # the check, once made

    def saved(self, **extra: Any) -> dict[str, Any]:
        """What a checkpoint keeps: the rank and the fingerprint, as JSON-ready data."""
        fp = fingerprint(*self._objects, **self._named, **extra)
        return {"rank": rank(), "fingerprint": fp.to_dict()}

    def before(self, **extra: Any) -> None:
        """The moment before the checkpoint is loaded: note the states, and start
        recording if asked."""
        self._before = fingerprint(*self._objects, **self._named, **extra)
        if self.record_steps and self._window is None:
            import rngtrace

            self._window = rngtrace.record(path=self.record_path or "resume.rngtrace.jsonl",
                                           steps=self.record_steps)
            self._window.__enter__()

    def verify(self, saved: Any, step: int | None, **extra: Any) -> RestoreCheck | None:
        """Check the live generators against ``saved`` (:meth:`saved`'s data); warn once,
        one line per generator that does not go on from the checkpoint's state. None
        where there is nothing to check (no fingerprint, another rank's)."""
        if self.result is not None or not isinstance(saved, dict):
            return self.result
        if saved.get("rank", 0) != rank():
            return None  # the checkpoint holds another rank's fingerprint
        self.result = check_restored(saved["fingerprint"], *self._objects,
                                     before=self._before, **self._named, **extra)
        if not self.result.ok:
            lines = [f"  {g.text}; {g.fix}" for g in self.result.problems]
            at = "" if step is None else f" at step {step}"
            warnings.warn(f"rngtrace: resumed{at}, but "
                          f"{len(lines)} generator{'s' if len(lines) > 1 else ''} do not "
                          "go on from the checkpoint's state:\n" + "\n".join(lines),
                          ResumeWarning, stacklevel=3)
        return self.result

    def close(self) -> None:
        """End the recording, if one was started."""
        window, self._window = self._window, None
        if window is not None:
            window.__exit__(None, None, None)
