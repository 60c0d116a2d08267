"""The data model: totals, the per-module table, event lines (hand-built logs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rngtrace
import rngtrace.summary
from rngtrace import Draw, Event, GeneratorInfo, Log


def draw(index, module, numel, *, phase="init", model="Net", module_type="Linear",
         consumed=True, generator="default:cpu", op="aten::uniform_"):
    return Draw(index=index, op=op, module=module, module_type=module_type, target=None,
                phase=phase, step=0, shape=(numel,), dtype="float32", device="cpu",
                numel=numel, args={}, generator=generator, state_before=None,
                state_after=None, consumed=consumed, site=None, code=None, api=None,
                model=model if module is not None else None)


def test_op_level_summary():
    log = Log(
        draws=[draw(0, "fc", 6), draw(1, "fc", 3), draw(2, "", 2, module_type="Net"),
               draw(3, None, 5, phase="other", module_type=None),
               draw(4, "drop", 4, phase="forward", module_type="Dropout", consumed=False)],
        events=[Event("reseed", "default:cpu", 3, "train.py:9", "torch.manual_seed(1)")],
        generators={"default:cpu": GeneratorInfo("default:cpu", "cpu", 0)},
    )
    # values: 6 + 3 + 2 + 5; the dropout draw consumed nothing
    assert log.values == 16
    assert log.summary().splitlines() == [
        "rngtrace log: 5 draws, 16 values, 1 generator, 1 event",
        "",
        "module  type     draws  values  phases     generators",
        "fc      Linear       2       9  init:2     default:cpu",
        "(root)  Net          1       2  init:1     default:cpu",
        "-                    1       5  other:1    default:cpu",
        "drop    Dropout      1       0  forward:1  default:cpu",
        "event: reseed on default:cpu before draw 3 at train.py:9: torch.manual_seed(1)",
    ]
    assert str(log) == log.summary()
    assert [s.module for s in log.module_stats()] == ["fc", "", None, "drop"]


def test_several_models_are_prefixed_and_incomplete_is_said():
    log = Log(draws=[draw(0, "fc", 1), draw(1, "fc", 1, model="Net#2")], complete=False)
    lines = log.summary().splitlines()
    assert lines[0] == "rngtrace log: 2 draws, 2 values, 0 generators, 0 events  [INCOMPLETE]"
    assert [ln.split()[0] for ln in lines[3:]] == ["Net:fc", "Net#2:fc"]
    assert repr(log) == "<rngtrace.Log 2 draws, 0 events, incomplete>"


def test_module_level_summary_counts_calls_not_values():
    log = Log(level="module", draws=[
        draw(0, "drop", 0, phase="forward", module_type="Dropout", op="module"),
        draw(1, "drop", 0, phase="forward", module_type="Dropout", op="module"),
        draw(2, "cuda_drop", 8, phase="forward", module_type="Dropout", op="module",
             generator="default:cuda:0")])
    lines = log.summary().splitlines()
    assert lines[0] == "rngtrace log: module level, 3 records, 0 generators, 0 events"
    assert lines[2].split() == ["module", "type", "calls", "offset", "phases", "generators"]
    # on CPU the amount is not measurable ("-"); on CUDA it is the Philox offset advance
    assert lines[3].split() == ["drop", "Dropout", "2", "-", "forward:2", "default:cpu"]
    assert lines[4].split() == ["cuda_drop", "Dropout", "1", "8", "forward:1", "default:cuda:0"]


def test_empty_log():
    assert Log().summary() == "rngtrace log: 0 draws, 0 values, 0 generators, 0 events"
    assert len(Log()) == 0 and list(Log()) == []


def test_the_methods_call_the_functions_of_the_layers_above(tmp_path):
    """print(log), log.summary(), log.save() and log.to_networkx() are the functions of
    rngtrace.summary, rngtrace.logfile and rngtrace.graph, which log.py does not import."""
    log = Log(draws=[draw(0, "fc", 6), draw(1, "drop", 4, phase="forward")])
    assert str(log) == log.summary() == rngtrace.summary.summary(log)
    log.save(tmp_path / "method.jsonl")
    rngtrace.save(log, tmp_path / "function.jsonl")
    assert (tmp_path / "method.jsonl").read_bytes() == (tmp_path / "function.jsonl").read_bytes()
    assert rngtrace.load(tmp_path / "method.jsonl") == log
    assert dict(log.to_networkx().nodes(data="draws")) == dict(
        rngtrace.to_networkx(log).nodes(data="draws")) == {"": 0, "fc": 1, "drop": 1}


@pytest.mark.slow
def test_a_log_has_its_methods_whatever_was_imported_first():
    # importing rngtrace.log runs rngtrace/__init__.py first, which hands the functions in
    code = ("from rngtrace.log import Log\n"
            "print(Log())\n"
            "import sys; print(' '.join(m for m in ('rngtrace.summary', 'rngtrace.logfile',"
            " 'rngtrace.graph', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    assert out == ["rngtrace log: 0 draws, 0 values, 0 generators, 0 events",
                   "rngtrace.summary rngtrace.logfile rngtrace.graph"]  # and no torch
