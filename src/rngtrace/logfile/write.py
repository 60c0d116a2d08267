"""Writing log files: :func:`save` for a whole log, :class:`FileSink` for a live window."""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import RecordError, RngtraceError
from ..log import Draw, Event, GeneratorInfo, Log
from .format import _DRAW, _FIRST, _MAX_CODE, _USAGE_CHUNK, FORMAT_VERSION, MARKER, MAX_LINE, _same


class _Writer:
    """Turns records into lines; remembers what lets later draw lines stay short."""

    def __init__(self) -> None:
        self._prev = dict(_FIRST)
        self._last_state: dict[str, str | None] = {}
        self._last_code: dict[str | None, str | None] = {}

    def header(self, log: Log, gens: dict[str, GeneratorInfo]) -> bytes:
        meta = dict(log.meta)
        line = _dump({MARKER: FORMAT_VERSION, "level": log.level, "meta": meta,
                      "gens": _gens(gens)})
        if len(line) > MAX_LINE and isinstance(meta.get("argv"), list):
            meta["argv"] = [str(a)[:_MAX_CODE] for a in meta["argv"][:64]] + ["..."]
            line = _dump({MARKER: FORMAT_VERSION, "level": log.level, "meta": meta,
                          "gens": _gens(gens)})
        return line

    def draw(self, d: Draw, patch: bool = False) -> bytes:
        r: dict[str, Any] = {"t": "p" if patch else "d", "i": d.index}
        prev = _FIRST if patch else self._prev
        changed = []
        for key, attr, _, _ in _DRAW:
            v = getattr(d, attr)
            p = prev[key]
            if v is not p and not _same(v, p):
                r[key] = list(v) if key == "sh" else v
                changed.append((key, v))
        if d.numel != math.prod(d.shape):
            r["n"] = d.numel
        code = d.code if d.code is None or len(d.code) <= _MAX_CODE else d.code[:_MAX_CODE]
        new_code = self._last_code.get(d.site) != code
        if patch or self._last_state.get(d.generator, 0) != d.state_before:
            r["sb"] = d.state_before
        if patch or new_code:
            r["cd"] = code
        line = _dump(r)
        if not patch:  # only once the line exists: a draw that fails to encode changes nothing
            prev.update(changed)
            self._last_state[d.generator] = d.state_after
            if new_code:
                self._last_code[d.site] = code
        return line

    def event(self, e: Event) -> bytes:
        r: dict[str, Any] = {"t": "e", "k": e.kind, "g": e.generator, "b": e.before}
        if e.site is not None:
            r["s"] = e.site
        if e.detail:
            r["x"] = e.detail
        return _dump(r)

    def end(self, log: Log) -> list[bytes]:
        lines = []
        end: dict[str, Any] = {"t": "end", "complete": log.complete, "steps": log.steps,
                               "gens": _gens(log.generators)}
        if isinstance(log.meta.get("dist"), dict):  # the rank, as known at the end
            end["dist"] = log.meta["dist"]
        for kind, pairs in (("called", log.called), ("with_grad", log.with_grad)):
            if pairs is None:
                continue
            end[kind] = len(pairs)
            i = 0
            while i < len(pairs):  # consecutive paths of one model, in chunks
                model, j = pairs[i][0], i
                while j < len(pairs) and j - i < _USAGE_CHUNK and pairs[j][0] == model:
                    j += 1
                lines.append(_dump({"t": "u", "k": kind, "md": model,
                                    "p": [p for _, p in pairs[i:j]]}))
                i = j
        lines.append(_dump(end))
        return lines


# ensure_ascii keeps every line plain ASCII, whatever the source code contained
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def _dump(r: dict[str, Any]) -> bytes:
    return (_encode(r) + "\n").encode("ascii")


def _gens(gens: dict[str, GeneratorInfo]) -> dict[str, Any]:
    return {g.name: {"dv": g.device, "seed": g.initial_seed, "state": g.state}
            for g in gens.values()}


def save(log: Log, path: str | os.PathLike[str]) -> None:
    """Write ``log`` to ``path`` (replaced atomically: readers never see half a file)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    w = _Writer()
    try:
        with open(tmp, "wb") as f:
            f.write(w.header(log, log.generators))
            k, events = 0, log.events
            for d in log.draws:
                while k < len(events) and events[k].before <= d.index:
                    f.write(w.event(events[k]))
                    k += 1
                f.write(w.draw(d))
            for e in events[k:]:
                f.write(w.event(e))
            f.writelines(w.end(log))
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise RngtraceError(f"cannot write {path}: {e.strerror or e}") from None


class FileSink:
    """Streams a recording window to a file, one flushed line per draw and event.

    ``record(path=...)`` uses it. Each line is handed to the operating system as it is
    made, so a program killed (even with ``kill -9``) loses at most the line being
    written; a power cut can lose more (lines are flushed, not fsync'ed). Memory stays
    flat: nothing is kept per draw but the last state of each generator and the last
    source line of each site.

    After the window, the ``Log`` it gave holds everything but the draws and events:
    ``meta`` (plus ``meta["path"]`` and ``meta["draws"]``, the count), ``generators``,
    ``steps``, ``complete``, ``called``, ``with_grad``. Its ``draws`` and ``events``
    stay empty, because a file window is for runs too long to hold in memory; read them
    with ``rngtrace.load(log.meta["path"])``. Draws made while a model is being built are
    written with provisional names (``"<Linear>"``) and patched when the window closes.

    Example::

        >>> import os, tempfile, torch, rngtrace
        >>> path = os.path.join(tempfile.mkdtemp(), "run.rngtrace.jsonl")
        >>> with rngtrace.record(path=path) as log:
        ...     x = torch.rand(3)
        >>> log.meta["draws"], len(rngtrace.load(path).draws)
        (1, 1)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        try:  # opened now, so that a bad path fails before the window opens
            self._f: BinaryIO | None = open(self.path, "wb", buffering=0)  # noqa: SIM115
        except OSError as e:
            raise RecordError(f"cannot write the log {path}: {e.strerror or e}") from None
        self._w = _Writer()
        self._lock = threading.Lock()
        self._draws = 0
        # forked children (DataLoader workers) inherit the recording mode and this file;
        # only the process that opened it writes, or their lines would interleave
        self._pid = os.getpid()

    def _write(self, make: Callable[..., bytes], *args: Any) -> None:
        with self._lock:  # encoding included: the writer's memory of past lines is shared
            if self._f is None or os.getpid() != self._pid:
                return
            line = make(*args)
            try:
                self._f.write(line)
            except OSError as e:  # never break the user's program over its log
                self._f.close()
                self._f = None
                warnings.warn(f"rngtrace: cannot write {self.path} ({e.strerror or e}); "
                              "the rest of the window is not recorded", RuntimeWarning,
                              stacklevel=4)

    def start(self, log: Log, gens: dict[str, GeneratorInfo]) -> None:
        """Write the header; ``gens`` are the default generators as the window opens."""
        self._write(self._w.header, log, gens)

    def draw(self, draw: Draw) -> None:
        if os.getpid() == self._pid:
            self._draws += 1
        self._write(self._w.draw, draw)

    def draws(self, draws: list[Draw]) -> None:
        """Several draws in one write (the light mode's records of one step)."""
        if os.getpid() == self._pid:
            self._draws += len(draws)
        self._write(lambda: b"".join([self._w.draw(d) for d in draws]))

    def event(self, event: Event) -> None:
        self._write(self._w.event, event)

    def finish(self, log: Log, patches: dict[int, Draw]) -> None:
        for d in patches.values():
            self._write(self._w.draw, d, True)
        self._write(lambda: b"".join(self._w.end(log)))
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None
        log.meta["path"] = self.path
        log.meta["draws"] = self._draws


