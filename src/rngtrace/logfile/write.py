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
from ..log import Draw, Event, FileInfo, GeneratorInfo, Log
from .files import check_target, is_log_line, open_regular, write_replacing
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
    """Write ``log`` to ``path`` (replaced atomically: readers never see half a file).

    ``path`` must be new, empty or an rngtrace log: anything else (a script, another
    tool's file, a FIFO) is refused with :class:`~rngtrace.RngtraceError`, untouched.
    """
    path = os.fspath(path)
    check_target(path, "the log")
    w = _Writer()

    def write(f: BinaryIO) -> None:
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

    try:
        write_replacing(path, write)
    except OSError as e:
        raise RngtraceError(f"cannot write {path}: {e.strerror or e}") from None


class FileSink:
    """Streams a recording window to a file, one flushed line per draw and event.

    ``record(path=...)`` uses it. Each line is handed to the operating system as it is
    made, so a program killed (even with ``kill -9``) loses at most the line being
    written; a power cut can lose more (lines are flushed, not fsync'ed). Memory stays
    flat: nothing is kept per draw but the last state of each generator and the last
    source line of each site.

    The path is checked when the sink is made (it must be new, empty or an rngtrace log,
    and a regular file: :mod:`rngtrace.logfile.files`), but opened only by
    :meth:`start`, which the recorder calls once the window is its own: a window that is
    refused (nested) or never entered leaves the file as it was. While the window is
    open the file is locked (``flock``); a second process streaming to the same path
    writes its log beside it instead (``run.rngtrace.<pid>.jsonl``), with a
    ``RuntimeWarning`` naming it, so neither log is lost.

    After the window, the ``Log`` it gave holds everything but the draws and events:
    ``meta``, ``generators``, ``steps``, ``complete``, ``called``, ``with_grad``, and
    ``file`` (a :class:`~rngtrace.FileInfo`: the file written, the records written).
    Its ``draws`` and ``events`` stay empty, because a file window is for runs too long
    to hold in memory; read them with ``rngtrace.load(log.file.path)``. Draws made while
    a model is being built are written with provisional names (``"<Linear>"``) and
    patched when the window closes. A write that fails (a full disk) warns once, stops
    the file there and marks the window incomplete (``log.file.error`` says why).

    Example::

        >>> import os, tempfile, torch, rngtrace
        >>> path = os.path.join(tempfile.mkdtemp(), "run.rngtrace.jsonl")
        >>> with rngtrace.record(path=path) as log:
        ...     x = torch.rand(3)
        >>> log.file.written, len(rngtrace.load(log.file.path).draws)
        (1, 1)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        # checked now, so that a bad path fails before the window opens; opened by start()
        check_target(self.path, "the log", error=RecordError)
        self._f: BinaryIO | None = None
        self._error: str | None = None
        self._w = _Writer()
        self._lock = threading.Lock()
        self._draws = 0
        # forked children (DataLoader workers) inherit the recording mode and this file;
        # only the process that opened it writes, or their lines would interleave
        self._pid = os.getpid()

    def _failed(self, e: OSError, what: str) -> None:
        self._error = e.strerror or str(e)
        warnings.warn(f"rngtrace: cannot write {self.path} ({self._error}); {what}",
                      RuntimeWarning, stacklevel=5)

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
                self._failed(e, "the rest of the window is not recorded")

    def start(self, log: Log, gens: dict[str, GeneratorInfo]) -> None:
        """Open the file (the window is claimed now) and write the header; ``gens`` are
        the default generators as the window opens."""
        with self._lock:
            try:
                self._f = self._open()
            except OSError as e:
                self._failed(e, "the window is not recorded")
        self._write(self._w.header, log, gens)

    def _open(self) -> BinaryIO:
        """The file, locked and emptied; or a new file beside it when another process
        holds it or it stopped being a log since the check (warned)."""
        fd = open_regular(self.path, os.O_RDWR | os.O_CREAT)
        why = None
        if not _lock(fd):
            why = "is being written by another process"
        elif os.fstat(fd).st_size and not is_log_line(os.pread(fd, MAX_LINE + 1, 0)
                                                     .split(b"\n", 1)[0]):
            why = "is no longer an rngtrace log"
        if why is None:
            os.ftruncate(fd, 0)
        else:
            os.close(fd)
            fd, moved = _beside(self.path)
            warnings.warn(f"rngtrace: {self.path} {why}; this window's log is written to "
                          f"{moved} instead", RuntimeWarning, stacklevel=4)
            self.path = moved
        return os.fdopen(fd, "wb", buffering=0)

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
        self.close()
        # after the end record: what the log says of its file is never in the file
        log.file = FileInfo(self.path, self._draws, self._error)
        if self._error is not None:
            log.complete = False

    def close(self) -> None:
        """Close and unlock the file without an end record (a window that failed to
        open, or was interrupted while closing: the file loads as cut short). Safe to
        call again; a no-op after :meth:`finish`, and in a forked child (unlocking there
        would unlock the parent's file too: the lock belongs to the shared descriptor)."""
        with self._lock:
            if self._f is not None and os.getpid() == self._pid:
                _unlock(self._f.fileno())
                self._f.close()
                self._f = None


def _lock(fd: int) -> bool:
    """Lock a log being written; False when another process holds it. Where files
    cannot be locked (no ``fcntl``, some network file systems) every lock succeeds."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _unlock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except (ImportError, OSError):
        pass


def _beside(path: str) -> tuple[int, str]:
    """A new file next to ``path`` named after this process: ``run.<pid>.jsonl``."""
    stem, ext = os.path.splitext(path)
    for n in range(100):
        name = f"{stem}.{os.getpid()}{f'-{n}' if n else ''}{ext}"
        try:
            return open_regular(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL), name
        except FileExistsError:
            continue
    raise FileExistsError(17, "no free name beside it", path)
