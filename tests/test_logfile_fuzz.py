"""Property tests for log files: any log round-trips, and no input crashes the loader.

Bounded (a few hundred examples each, 40 for the CLI verbs on mutated logs that load)
so that the suite stays fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import rngtrace
from rngtrace import Draw, Event, GeneratorInfo, Log, LogFormatError
from rngtrace.cli import main
from rngtrace.log import EVENT_KINDS, LEVELS, PHASES
from rngtrace.logfile import save

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=12)
opt_text = st.none() | text
u63 = st.integers(0, 2**63 - 1)
scalar = st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | text
json_value = st.recursive(st.none() | scalar, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(text, inner, max_size=3), max_leaves=8)


@st.composite
def logs(draw) -> Log:
    gen_names = draw(st.lists(text, min_size=1, max_size=3, unique=True))
    draws = []
    for i in range(draw(st.integers(0, 8))):
        draws.append(Draw(
            index=i, op=draw(text), module=draw(opt_text), module_type=draw(opt_text),
            target=draw(opt_text), phase=draw(st.sampled_from(PHASES)),
            step=draw(u63), shape=tuple(draw(st.lists(st.integers(0, 2**20), max_size=4))),
            dtype=draw(text), device=draw(text), numel=draw(u63),
            args=draw(st.dictionaries(text, scalar, max_size=3)),
            generator=draw(st.sampled_from(gen_names)), state_before=draw(opt_text),
            state_after=draw(opt_text), consumed=draw(st.booleans()), site=draw(opt_text),
            code=draw(opt_text), api=draw(opt_text), model=draw(opt_text),
            discarded=draw(st.booleans()),
        ))
    pairs = st.none() | st.lists(st.tuples(opt_text, text), max_size=5)
    return Log(
        draws=draws,
        events=draw(st.lists(st.builds(Event, st.sampled_from(EVENT_KINDS), text, u63, opt_text,
                                       text), max_size=3)),
        generators={n: GeneratorInfo(n, draw(text), draw(st.none() | st.integers(0, 2**64)),
                                     draw(opt_text)) for n in gen_names},
        meta=draw(st.dictionaries(text, json_value, max_size=4)),
        complete=draw(st.booleans()), steps=draw(u63), level=draw(st.sampled_from(LEVELS)),
        called=draw(pairs), with_grad=draw(pairs),
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FAST
@given(log=logs())
def test_any_log_round_trips(tmp, log):
    path = tmp / "rt.jsonl"
    save(log, path)
    assert rngtrace.load(path) == log


def _load_or_format_error(path, note=event) -> Log | None:
    """Loading may succeed or raise LogFormatError; nothing else. What loads saves again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cut-short logs warn
        try:
            log = rngtrace.load(path)
        except LogFormatError as e:
            assert e.path == str(path) and str(path) in str(e)
            note("refused")
            return None
    note("loaded complete" if log.complete else "loaded incomplete")
    # whatever loads is well typed: it saves, and saving is stable from there on
    again = path.with_suffix(".again")
    save(log, again)
    first = again.read_bytes()
    save(rngtrace.load(again), again)
    assert again.read_bytes() == first
    return log


@FAST
@given(data=st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(tmp, data):
    path = tmp / "junk.jsonl"
    path.write_bytes(data)
    _load_or_format_error(path)


@FAST
@given(data=st.binary(max_size=300))
def test_fuzz_bytes_after_a_valid_header(tmp, data):
    path = tmp / "junk.jsonl"
    path.write_bytes(b'{"rngtrace_log":1}\n' + data)
    _load_or_format_error(path)


_GOOD: list[str] = []


def _good_lines() -> list[str]:
    if not _GOOD:
        from test_logfile import _log  # the hand-made log with every kind of record

        d = tempfile.mkdtemp()
        save(_log(), os.path.join(d, "good.jsonl"))
        with open(os.path.join(d, "good.jsonl")) as f:
            _GOOD.extend(f.read().splitlines(keepends=True))
    return list(_GOOD)


# strings that once loaded and then broke a printer or a picture
HOSTILE = ["\ud800", "a\udfffb", ".".join(["x"] * 3000), "\x1b[31m\x07\r", "\u202e",
           "9" * 5000, "\u00b2", "0.1.\u00b2", ""]
_HOSTILE = st.sampled_from(HOSTILE)


def _mutant(data: st.DataObject) -> bytes:
    """A good log with one mutation: a field set or deleted, lines swapped, a cut, a
    byte changed, or a hostile string put into a field."""
    lines = _good_lines()
    i = data.draw(st.integers(0, len(lines) - 1))
    kind = data.draw(st.sampled_from(["set", "delete", "cut", "byte", "swap", "hostile"]))
    if kind in ("set", "delete", "hostile"):
        rec = json.loads(lines[i])
        key = data.draw(st.sampled_from(sorted(rec)))
        if kind == "set":
            rec[key] = data.draw(json_value)
        elif kind == "hostile":
            rec[key] = data.draw(_HOSTILE)
        else:
            del rec[key]
        lines[i] = json.dumps(rec) + "\n"
        return "".join(lines).encode()
    if kind == "swap":
        j = data.draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines).encode()
    blob = bytearray("".join(lines).encode())
    pos = data.draw(st.integers(0, len(blob) - 1))
    if kind == "cut":
        del blob[pos:]
    else:
        blob[pos] = data.draw(st.integers(0, 255))
    return bytes(blob)


@FAST
@given(data=st.data())
def test_fuzz_mutated_good_log(tmp, data):
    path = tmp / "mutant.jsonl"
    path.write_bytes(_mutant(data))
    _load_or_format_error(path)


def _verb(*argv: str) -> int:
    """``rngtrace.cli.main`` in this process, printing into strict UTF-8 streams (what a
    terminal does: a lone surrogate raised UnicodeEncodeError there)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
        out.flush()
        err.flush()
    return code


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_the_verbs_on_mutated_logs_that_load(tmp, data):
    path = tmp / "verbs.jsonl"
    path.write_bytes(_mutant(data))
    log = _load_or_format_error(path)
    if log is None:
        return
    good = tmp / "good-for-verbs.jsonl"
    if not good.exists():
        good.write_text("".join(_good_lines()))
    # 0 success or same, 1 different; never a traceback (nor exit 2 on a log that loads,
    # except for a diff of logs of two levels, which diff refuses)
    assert _verb("show", str(path)) == 0
    levels = {rngtrace.load(good).level, log.level}
    assert _verb("diff", str(good), str(path)) in ((0, 1) if len(levels) == 1 else (2,))
    assert _verb("diff", str(path), str(path)) == 0
    assert _verb("dot", str(path), "-o", "-") == 0
    if len(levels) == 1:
        assert _verb("dot", str(good), str(path), "-o", "-") == 0


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("key", ["o", "m", "mt", "tg", "g", "s", "cd", "md"])
def test_the_verbs_on_hostile_strings(tmp, key, value):
    """Every hostile string in every printed field of a draw: refused by the loader, or
    shown, diffed and drawn without an exception."""
    lines = _good_lines()
    rec = json.loads(lines[1])
    rec[key] = value
    lines[1] = json.dumps(rec) + "\n"
    path = tmp / "hostile.jsonl"
    path.write_text("".join(lines))
    if _load_or_format_error(path, note=print) is None:
        return
    good = tmp / "good-for-verbs.jsonl"
    good.write_text("".join(_good_lines()))
    assert _verb("show", str(path)) == 0
    assert _verb("diff", str(good), str(path)) in (0, 1)
    assert _verb("dot", str(good), str(path), "-o", "-") == 0
