"""``make bench``'s harness, smoke-run with ``--quick`` (tiny sizes, untimed: no figure
is checked, only that every benchmark ran and reported)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks", "bench.py")


@pytest.mark.slow
def test_quick_run_reports_every_benchmark(tmp_path):
    out = tmp_path / "results.json"
    readme = pathlib.Path(ROOT, "README.md")
    before = readme.read_text(encoding="utf-8") if readme.exists() else None
    proc = subprocess.run([sys.executable, BENCH, "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["quick"] is True
    assert {"cpu", "cores", "torch", "torch_threads", "device"} <= set(result["machine"])
    benches = {r["bench"].split(".")[0] for r in result["rows"]}
    assert benches == {"1", "2a", "2c", "3", "4", "5", "6", "8"}  # 2b, 7: full runs only
    cases = {r["case"] for r in result["rows"]}
    assert {"plain", "bare TorchDispatchMode", "record()", "record(level='module')",
            "record(level='module'), steps paired with paused ones", "DebugMode",
            "record(), steps paired with its mode passing through",
            "record(steps=2)"} <= cases
    for r in result["rows"]:
        if r["ratio"] is not None:
            assert r["ratio"] > 0 and r["ref"] in ("plain", "bare", "paused", "inactive")
    assert result["table"] in proc.stdout
    # a quick run never rewrites the README's table
    after = readme.read_text(encoding="utf-8") if readme.exists() else None
    assert after == before


@pytest.mark.slow
def test_bad_arguments_exit_2():
    proc = subprocess.run([sys.executable, BENCH, "--only", "nonsense"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown benchmark(s): nonsense" in proc.stderr
