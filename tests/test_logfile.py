"""Log files: round trips, streaming with record(path=...), and every kind of bad file."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

import rngtrace
from rngtrace import Draw, Event, GeneratorInfo, Log, LogFormatError
from rngtrace.logfile import save


def _draw(i: int, **kw) -> Draw:
    base = dict(
        index=i, op="aten::uniform_", module="enc", module_type="Linear",
        target="enc.weight", phase="init", step=0, shape=(4, 3), dtype="float32",
        device="cpu", numel=12, args={"from": -0.5, "to": 0.5}, generator="default:cpu",
        state_before=f"{i:016x}", state_after=f"{i + 1:016x}", consumed=True,
        site="model.py:3", code="self.enc = nn.Linear(3, 4)", api="torch.nn.init.uniform_",
        model="Net", discarded=False,
    )
    base.update(kw)
    return Draw(**base)


def _log() -> Log:
    draws = [
        _draw(0),
        _draw(1, target="enc.bias", shape=(4,), numel=4),
        _draw(2, op="aten::bernoulli_.float", module="drop", module_type="Dropout",
              target=None, phase="forward", step=1, shape=(2, 4), numel=8, args={"p": 0.9},
              site="model.py:9", code="x = self.drop(x)", api="torch.nn.functional.dropout"),
        _draw(3, op="aten::randperm", module=None, module_type=None, target=None,
              phase="other", step=1, shape=(8,), dtype="int64", numel=8, args={"n": 8},
              generator="generator:1", state_before="aa", state_after="bb", model=None,
              site=None, code=None, api=None),
        _draw(4, module="", module_type="Net", target=None, consumed=False,
              state_before="05", state_after="05", discarded=True, shape=(), numel=0,
              dtype="", device="meta"),
    ]
    return Log(
        draws=draws,
        events=[Event("reseed", "default:cpu", 2, "train.py:5", "torch.manual_seed(1)"),
                Event("gap", "default:cpu", 5)],
        generators={"default:cpu": GeneratorInfo("default:cpu", "cpu", 0, "00"),
                    "generator:1": GeneratorInfo("generator:1", "cpu", 2**64 - 1, "aa")},
        meta={"tool": "rngtrace", "argv": ["train.py", "--x"], "time": "2026-01-01"},
        complete=True, steps=2, level="op",
        called=[("Net", ""), ("Net", "enc"), (None, "x")],
        with_grad=[("Net", "enc.weight")],
    )


def test_round_trip_equal(tmp_path):
    log = _log()
    path = tmp_path / "a.rngtrace.jsonl"
    log.save(path)
    back = rngtrace.load(path)
    assert back == log  # draws, events, generators, meta, complete, steps, called...
    assert back.draws == log.draws and back.events == log.events


def test_round_trip_none_usage_and_incomplete_flag(tmp_path):
    log = _log()
    log.called, log.with_grad, log.complete = None, None, False
    save(log, tmp_path / "a.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete file: no warning, even if complete=False
        back = rngtrace.load(tmp_path / "a.jsonl")
    assert back == log


def test_record_streams_to_file(tmp_path):
    path = tmp_path / "lin.rngtrace.jsonl"
    torch.manual_seed(5)  # so that both windows see the same reseed event
    with rngtrace.record() as mem:
        torch.manual_seed(0)
        torch.nn.Linear(4, 2)
    torch.manual_seed(5)
    with rngtrace.record(path=path) as log:
        torch.manual_seed(0)
        torch.nn.Linear(4, 2)
    # the window's log keeps no draws; the file has them: weight + bias = 2 draws
    assert log.draws == [] and log.meta["draws"] == 2
    assert log.meta["path"] == str(path)
    back = rngtrace.load(path)
    assert [(d.op, d.target) for d in back.draws] == [("aten::uniform_", "weight"),
                                                     ("aten::uniform_", "bias")]
    # equal to the in-memory window's draws but for the line they were made on
    assert [dataclasses.replace(d, site=None) for d in back.draws] == [
        dataclasses.replace(d, site=None) for d in mem.draws]
    strip = lambda e: dataclasses.replace(e, site=None)  # noqa: E731
    assert [strip(e) for e in back.events] == [strip(e) for e in mem.events]
    assert [e.kind for e in back.events] == ["reseed"]
    assert back.generators == mem.generators


def _write(tmp_path, data: bytes | str, name: str = "bad.jsonl"):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _good_lines(tmp_path) -> list[str]:
    _log().save(tmp_path / "good.jsonl")
    return (tmp_path / "good.jsonl").read_text().splitlines(keepends=True)


def _fails(path, *words: str, line: int | None = None) -> LogFormatError:
    with pytest.raises(LogFormatError) as info:
        rngtrace.load(path)
    e = info.value
    assert str(path) in str(e)
    assert e.line == line
    for w in words:
        assert w in str(e), (w, str(e))
    return e
