"""Ctrl-C anywhere in a window: a ``KeyboardInterrupt`` injected at every line
of rngtrace's recording code that a small program's window runs, one run per line, at
both levels. After each, torch
is as it was (no patch, hook, dispatch mode or claim left; the generator in a state the
program itself passes through), a new window records, and a streamed log loads."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import rngtrace
import rngtrace.recording
import untouched

RECORDING = os.path.dirname(os.path.abspath(rngtrace.recording.__file__)) + os.sep


def scenario(level: str, path: str | None = None) -> None:
    """A small program: construction, a forward with dropout, a reseed, a backward and
    an optimizer step, one more draw: every kind of thing a window records."""
    torch.manual_seed(0)
    with rngtrace.record(level=level, path=path):
        net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        out = net(torch.ones(2, 4))
        torch.manual_seed(1)
        out.sum().backward()
        opt.step()
        torch.rand(2)


class _States(TorchDispatchMode):
    """Every state the default generator has between two ops of the plain program."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = {bytes(torch.get_rng_state().tolist())}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.seen.add(bytes(torch.get_rng_state().tolist()))
        return out


def _plain_states(level: str) -> set[bytes]:
    """The states of the scenario run without rngtrace (record() made a no-op)."""
    class Nothing:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: Any) -> None:
            return None

    states = _States()
    real = rngtrace.record
    rngtrace.record = lambda **kwargs: Nothing()  # type: ignore[assignment]
    try:
        torch.manual_seed(0)
        states.seen.add(bytes(torch.get_rng_state().tolist()))
        with states:
            scenario(level)
        states.seen.add(bytes(torch.get_rng_state().tolist()))
    finally:
        rngtrace.record = real
    return states.seen


def _lines_run(level: str, path: str) -> list[tuple[str, int]]:
    """(file, line) of every line run in recording/ by the scenario, in order."""
    seen: list[tuple[str, int]] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            seen.append((os.path.basename(frame.f_code.co_filename), frame.f_lineno))
        return local

    scenario(level, path)  # warm: the ops table and code facts are cached after a first run
    sys.settrace(lambda frame, event, arg: local if _ours(frame) else None)
    try:
        scenario(level, path)
    finally:
        sys.settrace(None)
    return seen


def _ours(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(RECORDING)


def _interrupt_at(k: int, count: list[int]) -> Callable[..., Any]:
    """A trace function raising KeyboardInterrupt at the k-th line run in recording/."""
    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] == k:
                raise KeyboardInterrupt
        return local

    return lambda frame, event, arg: local if _ours(frame) else None


def _check_interrupt_at(level: str, k: int, plain: set[bytes], path: str) -> None:
    torch.manual_seed(0)
    before = untouched.Snapshot.take()
    count = [0]
    sys.settrace(_interrupt_at(k, count))
    try:
        scenario(level, path)
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    assert count[0] >= k, "the scenario ran fewer lines than when counted"
    where = f"interrupt at line {k} of the window"
    assert before.problems(rng=False) == [], where
    assert bytes(torch.get_rng_state().tolist()) in plain, where
    if os.path.exists(path) and os.path.getsize(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "cut short": it was interrupted
            rngtrace.load(path)
    untouched.records_again(level)


# The files that open, close and patch: the fast test interrupts every line the scenario
# runs there, at its first run; the slow one every line of recording/ (the per-draw code
# too: naming, frames, ops, paths), at its first run and at its last.
LIFECYCLE = {"window.py", "patches.py", "mode.py", "calls.py", "hooks.py", "reseed.py",
             "__init__.py", "pystreams.py", "pypatches.py", "workers.py", "distributed.py",
             "records.py", "digests.py", "sinks.py", "claims.py", "header.py", "notes.py"}


# A KeyboardInterrupt in a weakref callback (naming forgets freed temporaries) is printed
# and ignored by Python, as a real Ctrl-C there would be.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
# An interrupt inside naming can leave its tables half updated: the window then closes
# with an "error" event and this warning, the program unaffected.
@pytest.mark.filterwarnings("ignore:rngtrace could not:RuntimeWarning")
@pytest.mark.parametrize("level", ["op", "module"])
@pytest.mark.parametrize("files", ["lifecycle", pytest.param("all", marks=pytest.mark.slow)])
def test_an_interrupt_at_any_line_leaves_torch_as_it_was(level, files, tmp_path):
    """Each distinct line of recording code the scenario runs is interrupted (a line run
    again in a loop is the same code under the same handlers; the slow test also takes
    its last run, where the window's closing runs a line that ran before)."""
    plain = _plain_states(level)
    lines = _lines_run(level, str(tmp_path / "counted.rngtrace.jsonl"))
    first: dict[tuple[str, int], int] = {}
    last: dict[tuple[str, int], int] = {}
    for k, line in enumerate(lines, 1):
        if files == "all" or line[0] in LIFECYCLE:
            first.setdefault(line, k)
            last[line] = k
    ks = sorted(set(first.values()) | (set(last.values()) if files == "all" else set()))
    assert len(ks) > 100
    for k in ks:
        _check_interrupt_at(level, k, plain, str(tmp_path / f"{k}.rngtrace.jsonl"))
