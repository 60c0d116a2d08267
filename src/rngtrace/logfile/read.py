"""The reader behind :func:`rngtrace.load`: one line at a time, every field checked.

The format table is in :mod:`.format`; the writer in :mod:`.write`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import LogFormatError
from ..log import EVENT_KINDS, LEVELS, PHASES, Draw, Event, GeneratorInfo, Log
from ..text import plural
from .files import open_regular
from .format import (
    _DRAW,
    _FIRST,
    _REQ,
    FORMAT_VERSION,
    MARKER,
    MAX_DEPTH,
    MAX_LINE,
    MAX_PATH,
    MAX_RECORDS,
    _args,
    _bool,
    _event_kind,
    _int,
    _level,
    _oint,
    _oshape,
    _ostr,
    _phase,
    _shape,
    _str,
)


def _one_of(words: tuple[str, ...]) -> str:
    return "one of " + ", ".join(f'"{w}"' for w in words)


_EXPECTED: dict[Callable[[Any], bool], str] = {
    _int: "a non-negative integer", _str: "a string", _ostr: "a string or null",
    _bool: "true or false", _shape: "a list of non-negative integers",
    _args: "an object of numbers and strings",
    _oint: "a non-negative integer or null",
    _oshape: "null or a list of non-negative integers",
    _phase: _one_of(PHASES), _level: _one_of(LEVELS), _event_kind: _one_of(EVENT_KINDS),
}
_ABSENT: Any = object()
_CHECKS = {key: check for key, _, check, _ in _DRAW}
_ATTRS = [(key, attr) for key, attr, _, _ in _DRAW]
_PATHS = {"m": "module path", "tg": "target"}  # dotted paths, limited in depth
_REQUIRED = [key for key, _, _, first in _DRAW if first is _REQ]
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # the escapes that may hide one
_SNIFF = ((b"\x80", "a pickle"), (b"PK\x03\x04", "a zip archive (torch.save?)"),
          (b"\x1f\x8b", "gzip-compressed"))


class Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.line = 0
        # Loaded logs are big and repetitive: equal strings, shapes, argument dicts and
        # element counts are one object each (states, unique to each draw, are not kept
        # in a table). A loaded draw's ``args`` may be shared: records are read-only.
        self._strs: dict[str, str] = {}
        self._shapes: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._args: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._ints: dict[int, int] = {}
        self._first = dict(_FIRST, a={})  # this log's own {}, never the table's
        self._prev = self._first
        self._last_state: dict[str, str | None] = {}
        self._last_code: dict[str | None, str | None] = {}

    def fail(self, message: str) -> Any:
        raise LogFormatError(message, self.path, self.line or None)

    def read(self) -> Log:
        try:  # never open() a FIFO or a device: it blocks, or it never ends
            fd = open_regular(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self.fail("no such file")
        except IsADirectoryError:
            return self.fail("is a directory, not a log file")
        except OSError as e:
            if e.errno == errno.ENXIO:  # a socket, on some systems
                return self.fail("is a socket, not a regular file")
            return self.fail(f"cannot read: {e.strerror or e}")
        with os.fdopen(fd, "rb") as f:
            try:
                return self._read(f)
            except OSError as e:
                return self.fail(f"cannot read: {e.strerror or e}")

    def _read(self, f: BinaryIO) -> Log:
        log, gens = self._head(f)
        usage: dict[str, list[tuple[str | None, str]]] = {"called": [], "with_grad": []}
        end, cut = self._body(f, log, usage)
        if end is None:
            self._cut_short(log, gens, cut)
            return log
        log.complete, log.steps, log.generators = end["complete"], end["steps"], end["gens"]
        if type(end["dist"]) is dict:  # the header's, completed as the window closed
            log.meta["dist"] = end["dist"]
        for kind in ("called", "with_grad"):
            if end[kind] is not None:
                if end[kind] != len(usage[kind]):
                    self.fail(f"end record counts {end[kind]} {kind} entries, "
                              f"the file has {len(usage[kind])}")
                setattr(log, kind, usage[kind])
        return log

    def _head(self, f: BinaryIO) -> tuple[Log, dict[str, GeneratorInfo]]:
        """The header line: a new log, and the generators it names."""
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return self.fail("empty file, not an rngtrace log")
        self.line = 1
        for magic, what in _SNIFF:
            if raw.startswith(magic):
                return self.fail(f"{what}, not an rngtrace log (which is JSON Lines text)")
        if len(raw) > MAX_LINE:
            return self.fail(f"line longer than {MAX_LINE:,} bytes")
        head = self._header(self._parse(raw))
        return Log(level=head["level"], meta=head["meta"]), self._gens(head["gens"], "header")

    def _body(self, f: BinaryIO, log: Log, usage: dict[str, list[Any]]
              ) -> tuple[dict[str, Any] | None, bool]:
        """Every line after the header: (the end record or None, whether the last line
        was cut short)."""
        end: dict[str, Any] | None = None
        while raw := f.readline(MAX_LINE + 1):
            self.line += 1
            if self.line > MAX_RECORDS:
                self.fail(f"more than {MAX_RECORDS:,} records (the limit rngtrace reads)")
            if raw.endswith(b"\n"):
                rec = self._parse(raw)
            elif len(raw) > MAX_LINE:
                return self.fail(f"line longer than {MAX_LINE:,} bytes")
            else:  # the last line, with no newline: cut by a crash unless it parses
                try:
                    rec = self._parse(raw)
                except LogFormatError:
                    if end is not None:
                        raise
                    return None, True
            if rec is None:
                continue
            if end is not None:
                return self.fail("record after the end record")
            if rec.get("t") == "end":
                end = self._end(rec)
            else:
                self._record(rec, log, usage)
        return end, False

    def _record(self, rec: dict[str, Any], log: Log, usage: dict[str, list[Any]]) -> None:
        t = rec.get("t")
        if t == "d":
            log.draws.append(self._draw(rec, chain=len(log.draws)))
        elif t == "p":
            d = self._draw(rec, chain=None)
            if d.index >= len(log.draws):
                self.fail(f"patch for draw {d.index}, which the file does not have")
            log.draws[d.index] = d
        elif t == "e":
            log.events.append(self._event(rec))
        elif t == "u":
            self._usage(rec, usage)
        elif type(t) is not str:
            self.fail("record without a string kind 't'")
        # other kinds: optional additions within this format version, skipped

    def _cut_short(self, log: Log, gens: dict[str, GeneratorInfo], cut: bool) -> None:
        log.complete = False
        log.steps = log.draws[-1].step if log.draws else 0
        for d in log.draws:  # generators first seen after the header
            if d.generator not in gens:
                gens[d.generator] = GeneratorInfo(d.generator, d.device, None)
        log.generators = gens
        why = (f"{self.path}:{self.line}: the last line is cut short" if cut else
               f"{self.path}: no end record after line {self.line}")
        warnings.warn(f"{why} (the recording was killed or crashed); loaded "
                      f"{plural(len(log.draws), 'draw')}, marked incomplete", RuntimeWarning,
                      stacklevel=4)

    def _parse(self, raw: bytes) -> dict[str, Any] | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.fail("binary data, not an rngtrace log (which is JSON Lines text)")
        if not text.strip():
            return None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as e:
            return self.fail(f"not JSON ({e.msg} at column {e.colno})")
        except (ValueError, RecursionError) as e:  # huge integers, deep nesting
            return self.fail(f"not JSON that rngtrace reads ({type(e).__name__})")
        if type(rec) is not dict:
            return self.fail(f"a record must be a JSON object, not {_show(rec)}")
        if _SURROGATE_ESCAPE.search(raw) and (bad := _lone_surrogate(rec)) is not None:
            self.fail(f"a lone surrogate {bad!r} in a string (JSON escapes that are not "
                      "Unicode text)")
        return rec

    def _header(self, rec: dict[str, Any] | None) -> dict[str, Any]:
        if rec is None or MARKER not in rec:
            return self.fail(f"not an rngtrace log (the first line has no {MARKER!r} marker)")
        v = rec[MARKER]
        if type(v) is not int or v < 1:
            return self.fail(f"unknown format version {_show(v)}")
        if v > FORMAT_VERSION:
            return self.fail(f"format {v} is newer than this rngtrace ({FORMAT_VERSION}); "
                             "upgrade rngtrace to read it")
        self._check(rec, "level", _level, "header", "op")
        if type(rec.get("meta", {})) is not dict:
            self.fail(f"header field 'meta' is {_show(rec['meta'])}, expected an object")
        return {"level": rec.get("level", "op"), "meta": rec.get("meta", {}),
                "gens": rec.get("gens", {})}

    def _check(self, rec: dict[str, Any], key: str, check: Callable[[Any], bool],
               what: str, default: Any = _REQ) -> Any:
        v = rec.get(key, _ABSENT)
        if v is _ABSENT:
            if default is _REQ:
                self.fail(f"{what} record has no {key!r} field")
            return default
        if not check(v):
            self.fail(f"{what} field {key!r} is {_show(v)}, expected {_EXPECTED[check]}")
        return v

    def _draw(self, rec: dict[str, Any], chain: int | None) -> Draw:
        """A draw record (``chain``: the index expected) or a patch (None)."""
        what = "draw" if chain is not None else "patch"
        index = self._check(rec, "i", _int, what)
        if chain is not None and index != chain:
            self.fail(f"draw {index} out of order (expected draw {chain})")
        vals = dict(self._prev if chain is not None else self._first)
        for key, v in rec.items():
            check = _CHECKS.get(key)
            if check is None:  # "t", "i", the three special keys, unknown additions
                continue
            if not check(v):
                self.fail(f"{what} field {key!r} is {_show(v)}, expected {_EXPECTED[check]}")
            if type(v) is str:
                if key != "sa":
                    v = self._str(key, v)
            elif key == "sh" or (key in ("ls", "lo") and v is not None):
                v = tuple(v)
                v = self._shapes.setdefault(v, v)
            elif key == "a":
                v = self._args.setdefault(_args_key(v), v)
            vals[key] = v
        for key in _REQUIRED:
            if vals[key] is _REQ:
                self.fail(f"{what} record has no {key!r} field")
        if chain is not None:
            self._prev = vals
        vals = {attr: vals[key] for key, attr in _ATTRS}
        vals["index"] = index
        numel = self._check(rec, "n", _int, what, None)
        if numel is None:
            numel = math.prod(vals["shape"])
        vals["numel"] = self._ints.setdefault(numel, numel)
        vals["state_before"] = self._check(rec, "sb", _ostr, what, None)
        code = self._check(rec, "cd", _ostr, what, None)
        vals["code"] = code if code is None else self._strs.setdefault(code, code)
        if chain is not None:
            g = vals["generator"]
            if "sb" not in rec:
                if g not in self._last_state:
                    self.fail(f"draw has no 'sb' and no earlier draw on {g}")
                vals["state_before"] = self._last_state[g]
            self._last_state[g] = vals["state_after"]
            if "cd" in rec:
                self._last_code[vals["site"]] = vals["code"]
            else:
                vals["code"] = self._last_code.get(vals["site"])
        return Draw(**vals)

    def _str(self, key: str, v: str) -> str:
        """The one copy of a string value; module paths and targets checked once."""
        s = self._strs.get(v)
        if s is None:
            if key in _PATHS:
                self._path(v, _PATHS[key])
            s = self._strs[v] = v
        return s

    def _path(self, path: str, what: str) -> None:
        """Refuse a dotted path too long or too deep to draw (see :data:`MAX_DEPTH`)."""
        if path.count(".") >= MAX_DEPTH:
            self.fail(f"{what} deeper than {MAX_DEPTH} parts ({path.count('.') + 1:,})")
        if len(path) > MAX_PATH:
            self.fail(f"{what} longer than {MAX_PATH:,} characters")

    def _event(self, rec: dict[str, Any]) -> Event:
        return Event(kind=self._check(rec, "k", _event_kind, "event"),
                     generator=self._check(rec, "g", _str, "event"),
                     before=self._check(rec, "b", _int, "event"),
                     site=self._check(rec, "s", _ostr, "event", None),
                     detail=self._check(rec, "x", _str, "event", ""))

    def _usage(self, rec: dict[str, Any], usage: dict[str, list[Any]]) -> None:
        kind = self._check(rec, "k", _str, "usage")
        model = self._check(rec, "md", _ostr, "usage", None)
        paths: Any = rec.get("p")
        if type(paths) is not list or not all(type(p) is str for p in paths):
            self.fail(f"usage field 'p' is {_show(paths)}, expected a list of strings")
        for p in paths:
            self._path(p, "usage path")
        if kind in usage:
            usage[kind].extend((model, p) for p in paths)

    def _end(self, rec: dict[str, Any]) -> dict[str, Any]:
        return {"complete": self._check(rec, "complete", _bool, "end"),
                "steps": self._check(rec, "steps", _int, "end"),
                "gens": self._gens(rec.get("gens", {}), "end"),
                "called": self._check(rec, "called", _int, "end", None),
                "with_grad": self._check(rec, "with_grad", _int, "end", None),
                "dist": rec.get("dist")}

    def _gens(self, gens: Any, what: str) -> dict[str, GeneratorInfo]:
        if type(gens) is not dict:
            self.fail(f"{what} field 'gens' is {_show(gens)}, expected an object")
        out = {}
        for name, g in gens.items():
            if type(g) is not dict:
                self.fail(f"generator {name!r} is {_show(g)}, expected an object")
            seed = g.get("seed")
            if seed is not None and type(seed) is not int:
                self.fail(f"generator {name!r} 'seed' is {_show(seed)}, expected an integer")
            out[name] = GeneratorInfo(
                name, self._check(g, "dv", _str, f"generator {name!r}"), seed,
                self._check(g, "state", _ostr, f"generator {name!r}", None))
        return out


def _show(v: Any) -> str:
    try:
        text = json.dumps(v)
    except (ValueError, RecursionError):
        return f"a deeply nested {type(v).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _args_key(args: dict[str, Any]) -> tuple[Any, ...]:
    """Equal for argument dicts written the same (1, 1.0 and True differ; so do 0.0 and
    -0.0, and NaNs by their text)."""
    return tuple((k, type(v), repr(v) if type(v) is float else v) for k, v in args.items())


def _lone_surrogate(rec: Any) -> str | None:
    """The first string (key or value) in a parsed record holding a lone surrogate."""
    stack = [rec]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
        elif type(v) is str and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                return v[e.start:e.end]
    return None
