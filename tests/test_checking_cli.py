"""``rngtrace check`` on the command line, the line ``rngtrace show`` adds, and the pytest
guard's ``check=True`` (the findings themselves: test_checking.py)."""

from __future__ import annotations

import json

import torch
from torch import nn

import rngtrace
from rngtrace import Log
from rngtrace.cli import DIFFERENT, ERROR, OK, main

pytest_plugins = ["pytester"]


def layers(reseed: bool) -> Log:
    """A model of two layers, the generator set back between them when ``reseed``."""

    def layer(i: int) -> nn.Module:
        if reseed or i == 0:
            torch.manual_seed(0)
        return nn.Linear(4, 4)

    with rngtrace.record() as log:
        nn.Sequential(layer(0), layer(1))
    return log


def test_cli_exit_codes_text_and_json(tmp_path, capsys):
    bad, good = tmp_path / "bad.rngtrace.jsonl", tmp_path / "good.rngtrace.jsonl"
    layers(reseed=True).save(bad)
    layers(reseed=False).save(good)
    assert main(["check", str(good)]) == OK
    assert capsys.readouterr().out == "rngtrace check: good.rngtrace.jsonl: nothing found\n"
    assert main(["check", "--json", str(bad)]) == DIFFERENT
    data = json.loads(capsys.readouterr().out)
    assert [(f["kind"], f["severity"]) for f in data["findings"]] == [
        ("repeated-stream", "error")]
    # weight, bias, then the same two again: draw 2 repeats draw 0
    first = data["findings"][0]["evidence"][:2]
    assert [(e["index"], e["shape"], e["phase"]) for e in first] == [
        (0, [4, 4], "init"), (2, [4, 4], "init")]
    assert first[0]["state"] == first[1]["state"] and first[0]["log"] == "bad.rngtrace.jsonl"
    assert set(first[0]) == {"log", "rank", "index", "generator", "state", "op", "shape",
                             "phase", "step", "module", "target", "site", "worker", "role"}
    assert main(["check", str(tmp_path / "missing.jsonl")]) == ERROR
    assert main(["check"]) == ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("rngtrace: error: ") for e in err)


def test_show_names_the_hazards_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.rngtrace.jsonl"
    layers(reseed=True).save(path)
    assert main(["show", str(path), "--by-module"]) == OK
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["Hazards (1 error): repeated-stream",
                        f"  rngtrace check {path} gives the evidence and the fix"]
    good = tmp_path / "good.rngtrace.jsonl"
    layers(reseed=False).save(good)
    assert main(["show", str(good), "--by-module"]) == OK
    assert "Hazards" not in capsys.readouterr().out


GUARDED = """\
import torch
from torch import nn


def layer():
    torch.manual_seed(0)
    return nn.Linear(4, 4)


def test_layers(rng_snapshot):
    with rng_snapshot(check=True):
        model = nn.Sequential(layer(), layer())
"""


def test_the_pytest_guard_fails_on_hazards(pytester):
    pytester.makepyfile(test_guarded=GUARDED)
    r = pytester.runpytest("--rng-snapshot-update")  # the snapshot is written, and yet:
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*rng_snapshot: rngtrace check found hazards*",
                            "*ERROR ?repeated-stream? 2 draws fill 4x4 tensors*"])
    pytester.makepyfile(test_guarded=GUARDED.replace("layer(), layer()", "layer(), nn.Tanh()"))
    r = pytester.runpytest("--rng-snapshot-update")
    r.assert_outcomes(passed=1)
