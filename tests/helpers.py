"""What several test files need: the CLI in a subprocess, hand-made draws, the story's logs.

Import it as ``import helpers`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import rngtrace
from rngtrace import Draw, Log

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("RNGTRACE_UPDATE_GOLDEN") == "1"


def cli(*args: str, cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    """``python -m rngtrace ARGS`` for real, in a subprocess (output captured as text)."""
    return subprocess.run([sys.executable, "-m", "rngtrace", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


_DRAW: dict[str, Any] = dict(
    op="aten::uniform_", module="enc", module_type="Linear", target="enc.weight",
    phase="init", step=0, shape=(4, 3), dtype="float32", device="cpu", numel=12,
    args={"from": -0.5, "to": 0.5}, generator="default:cpu", consumed=True,
    site="model.py:3", code="self.enc = nn.Linear(3, 4)", api="torch.nn.init.uniform_",
    model="Net", discarded=False,
)


def make_draw(index: int, **fields: Any) -> Draw:
    """A plausible op-level draw; any field can be given. Unless given, the states are
    ``index`` and ``index + 1`` in hex (consecutive draws chain) and ``numel`` follows
    ``shape``."""
    base = dict(_DRAW, index=index, state_before=f"{index:016x}",
                state_after=f"{index + 1:016x}")
    if "shape" in fields and "numel" not in fields:
        n = 1
        for s in fields["shape"]:
            n *= s
        base["numel"] = n
    base.update(fields)
    return Draw(**base)


def check_golden(name: str, text: str) -> None:
    """``text`` must be the golden file ``tests/golden/NAME`` (UTF-8, ending with a
    newline: one is added to ``text`` when it has none). With ``RNGTRACE_UPDATE_GOLDEN=1``
    the file is rewritten; a missing one is written and the test fails, to be checked."""
    if not text.endswith("\n"):
        text += "\n"
    path = GOLDEN / name
    if UPDATE or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote the missing golden file {path}; check it and run again")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from the golden file; if intended, rerun with RNGTRACE_UPDATE_GOLDEN=1")


def record_story(variant: str = "original", *, seed: int = 0, steps: int = 1,
                 reseed: bool = False) -> Log:
    """The seed story (examples/story_models.py): build a TinyViT and train it ``steps``
    steps from ``seed``, recorded; ``reseed`` adds a ``manual_seed`` after the build."""
    import story_models
    import torch

    torch.manual_seed(seed)
    with rngtrace.record() as log:
        model = story_models.TinyViT(variant=variant)
        if reseed:
            torch.manual_seed(seed)  # the unexplained state change, inside one run
        story_models.train(model, steps=steps)
    return log


def count_reads(monkeypatch: Any) -> list[int]:
    """Count the light mode's generator reads from now on (the test's end undoes it):
    ``[n]``, which the caller may reset."""
    from rngtrace.recording.basics import generators

    reads = [0]
    read = generators.DefaultGen.read

    def counted(self: generators.DefaultGen) -> object:
        reads[0] += 1
        return read(self)

    monkeypatch.setattr(generators.DefaultGen, "read", counted)
    return reads


# What a hostile log may carry in every string field a page shows: markup, an attribute
# break-out, a javascript: URL, the end of a script element, a comment opener and a
# right-to-left override. Each payload sets window.__pwned if it ever runs.
PAYLOADS = (
    "<script>window.__pwned='script'</script>",
    '"><img src=x onerror="window.__pwned=\'img\'">',
    "' onload='window.__pwned=1' x='",
    "javascript:window.__pwned='url'",
    "</script><script>window.__pwned='end'</script><!--",
    "<svg onload=\"window.__pwned='svg'\"></svg>\u202etxt.exe",
)


def hostile_log() -> Log:
    """A log whose module names, types, targets, ops, sites, code, arguments, header and
    event carry :data:`PAYLOADS` (it saves and loads: the loader checks structure, not
    text)."""
    draws = []
    for i, p in enumerate(PAYLOADS):
        module = f"enc.{p}"
        draws.append(make_draw(i, module=module, module_type=p, target=f"{module}.weight",
                               op=f"aten::{p}", site=f"{p}:1", code=p, api=p,
                               args={"p": p}, model=p))
    log = Log(draws=draws, meta={"tool": "rngtrace", "cpu_state_digest": "xxh3-64",
                                 "argv": list(PAYLOADS),
                                 "time": PAYLOADS[0], "torch": PAYLOADS[1]})
    log.events = [rngtrace.Event("reseed", "default:cpu", 2, site=PAYLOADS[2],
                                 detail=PAYLOADS[4])]
    return log
