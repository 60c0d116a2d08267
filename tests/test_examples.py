"""The demo that `make demo` runs tells the whole story, end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_seed_story_demo(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"),
               RNGTRACE_DEMO_OUT=str(tmp_path / "out"))
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "seed_story.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # 1. the copies differ from the first step
    lines = text.splitlines()
    first = [ln.split("first losses")[1] for ln in lines if "first losses" in ln]
    assert len(first) == 4 and first[0] != first[1] and first[2] == first[3]
    # 3. the diff names the inserted module, its line, and that it is never used
    assert "Cause: module only in tidy: blocks.0.attn.linear, blocks.1.attn.linear" in text
    assert "self.linear = nn.Linear(dim, dim)" in text
    assert "tidy: blocks.0.attn.linear (Linear), never called" in text
    # 4. the remedy keeps every shared parameter, and rngtrace says so: the copies agree
    # on all they share, the tidy copy's 4 added draws are named at the user's line
    assert "29 of 29 shared parameters are bit-identical" in text
    assert "rngtrace diff: original and tidy agree on everything they share (30 draws); " \
           "tidy adds 4 draws of" in text
    assert "tidy: blocks.1.attn.linear.bias, 16 values on stable:blocks.1.attn.linear.bias@0" \
           in text
    assert "rngtrace/stable" not in text
    # 5. logs were written where the demo says
    assert (tmp_path / "out" / "tidy.rngtrace.jsonl").exists()
