"""The window both levels share (``rngtrace.recording.window``, ``.patches``, ``.mode``):
nothing left behind when opening fails, one typed window, module calls of other threads,
a user's dispatch mode left open, forked DataLoader workers, patches other code replaced."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn
from torch.utils import _python_dispatch as pd
from torch.utils._python_dispatch import TorchDispatchMode

import rngtrace
import untouched
from rngtrace.recording.basics.generators import DefaultGen, Generators
from rngtrace.recording.basics.patches import Patches
from rngtrace.recording.modulelevel import recorder as modulelevel
from rngtrace.recording.modulelevel.recorder import ModuleRecorder
from rngtrace.recording.oplevel import recorder as oplevel
from rngtrace.recording.oplevel.naming import Names
from rngtrace.recording.oplevel.recorder import Recorder
from rngtrace.recording.window import reseed
from rngtrace.recording.window import window as win
from rngtrace.recording.window.sinks import MemorySink
from rngtrace.recording.window.window import Window

LEVELS = ["op", "module"]
SEEDING = len(untouched._seeding())  # the public seeding functions wrapped (18)

# What __enter__ calls, in order, per level: (owner, attribute, which call fails).
# Patches.replace: torch.distributed.destroy_process_group first (the rank's backend),
# nn.Module.__call__, the seeding functions, then random's and NumPy's functions. Patches.hook:
# op: 3 registration hooks (naming) + the optimizer step; module: 1 + the step.
# Patches.after_import: what compiled code needs, when Inductor is (or gets) imported.
_COMMON = [
    (win, "claim_window", 1), (win, "header", 1), (MemorySink, "start", 1),
    (win, "patch_calls", 1), (win, "watch_reseeds", 1),
    (Patches, "replace", 1), (Patches, "replace", 2), (Patches, "replace", 3),
    (Patches, "replace", 2 + SEEDING), (Patches, "replace", 3 + SEEDING),
    (Patches, "replace", 10 + SEEDING), (Patches, "after_import", 1),
]
STEPS = {
    "op": [*_COMMON, (oplevel, "default_generators", 1),
           (Generators, "snapshot_defaults", 1), (Names, "install", 1),
           (Patches, "hook", 1), (Patches, "hook", 3), (Patches, "hook", 4),
           (oplevel.RecordingMode, "__enter__", 1)],
    "module": [*_COMMON, (modulelevel, "default_generators", 1), (DefaultGen, "start", 1),
               (ModuleRecorder, "_check_cuda", 1), (Patches, "hook", 1),
               (Patches, "hook", 2)],
}


def _fail_on(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, nth: int) -> None:
    original = getattr(owner, name)
    calls = [0]

    def fail(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == nth:
            raise RuntimeError("injected")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, fail)


@pytest.mark.parametrize(("level", "step"), [
    (level, step) for level in LEVELS for step in range(len(STEPS[level]))])
def test_a_failing_enter_leaves_nothing_behind(level, step, monkeypatch):
    owner, name, nth = STEPS[level][step]
    before = untouched.Snapshot.take()
    _fail_on(monkeypatch, owner, name, nth)
    window = rngtrace.record(level=level)
    with pytest.raises(RuntimeError, match="injected"), window:
        pytest.fail("the block must not run")
    monkeypatch.undo()
    assert before.problems() == []  # no claim, no patch, no hook, no mode, no draw
    untouched.records_again(level)
    with pytest.raises(rngtrace.RecordError, match="only be entered once"), window:
        pass


def test_record_returns_one_window_type():
    op, light = rngtrace.record(), rngtrace.record(level="module")
    assert isinstance(op, Recorder) and isinstance(light, ModuleRecorder)
    assert isinstance(op, Window) and isinstance(light, Window)
    with light as log:
        pass
    assert log.level == "module"


@pytest.mark.parametrize("level", LEVELS)
def test_module_calls_from_another_thread_are_noted_as_used(level):
    """The drift resolved: both levels note module calls from every thread of the
    process in ``called`` (a module run by a worker thread is used), and record only
    the window's thread."""
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with rngtrace.record(level=level) as log:
        t = threading.Thread(target=lambda: net(torch.ones(2)))
        t.start()
        t.join()
    assert log.called == [("Sequential", ""), ("Sequential", "0"), ("Sequential", "1")]
    assert log.draws == []  # no random op in the thread, and nothing read there


class _UserMode(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("level", LEVELS)
def test_a_mode_the_user_leaves_open_stays_and_ours_goes(level):
    user = _UserMode()
    try:
        with rngtrace.record(level=level) as log:
            torch.rand(1)
            user.__enter__()  # left open when the window closes
            torch.rand(2)
        assert pd._get_current_dispatch_mode_stack() == [user]
        torch.rand(3)
        assert user.ops[-1] == "aten.rand.default"
    finally:
        if pd._get_current_dispatch_mode_stack()[-1:] == [user]:
            user.__exit__(None, None, None)
    assert pd._get_current_dispatch_mode_stack() == []
    # torch's process-wide flags are as before any mode (torch.compile reads the last)
    assert not pd._is_in_torch_dispatch_mode
    assert not pd._is_in_non_infra_torch_dispatch_mode
    assert not pd._is_in_any_mode_without_ignore_compile_internals
    if level == "op":  # rand(1) and rand(2), the latter through the user's mode
        assert [d.shape for d in log.draws] == [(1,), (2,)]


def test_a_mode_entered_before_the_window_stays_under_it():
    user = _UserMode()
    with user:
        with rngtrace.record() as log:
            torch.rand(1)
        assert pd._get_current_dispatch_mode_stack() == [user]
    assert len(log.draws) == 1 and pd._get_current_dispatch_mode_stack() == []


class _Windowed(torch.utils.data.Dataset):
    """Opens its own window in ``__getitem__``, i.e. in the forked worker."""

    def __init__(self, level: str) -> None:
        self.level = level
        self.drop = nn.Dropout(0.5)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        with rngtrace.record(level=self.level) as log:
            self.drop(torch.ones(3))
        return torch.tensor(len(log.draws))


@pytest.mark.parametrize("level", LEVELS)
def test_a_forked_worker_opens_its_own_window(level):
    loader = torch.utils.data.DataLoader(_Windowed(level), batch_size=2, num_workers=2,
                                         multiprocessing_context="fork")
    with rngtrace.record(level=level) as log:
        batches = [b.tolist() for b in loader]
    # each item: one dropout mask in the worker's window (one bernoulli_ at op level,
    # one record of the Dropout call at module level)
    assert batches == [[1, 1], [1, 1]]
    # the parent's own: iter()'s base seed for the workers (random_ on the default
    # generator), one draw at op level, one outside record at module level
    own = [(d.generator, d.worker) for d in log.draws if d.worker is None]
    assert own == [("default:cpu", None)]
    # the workers' torch draws, merged by the parent's op-level window (its inherited
    # mode records them too, under the worker's window): 2 items x 2 workers
    workers = [(d.op, d.worker) for d in log.draws if d.worker is not None]
    assert workers == ([("aten::bernoulli_", 0)] * 2 + [("aten::bernoulli_", 1)] * 2
                       if level == "op" else [])
    assert log.complete and log.events == []


def test_a_seeding_function_replaced_over_ours_is_kept_with_a_warning():
    seed = torch.manual_seed
    try:
        with pytest.warns(RuntimeWarning, match="torch.manual_seed was replaced"), \
                rngtrace.record() as log:
            ours = torch.manual_seed
            torch.manual_seed = lambda s: ours(s)
            torch.manual_seed(3)
        theirs = torch.manual_seed
        assert theirs is not seed and theirs is not ours
        theirs(4)  # our wrapper, still in their chain, passes through
        assert torch.initial_seed() == 4
        assert [e.detail for e in log.events] == ["torch.manual_seed(3)"]
    finally:
        torch.manual_seed = seed


def test_the_reseed_depth_is_per_thread():
    """A thread inside a seeding call does not silence another thread's."""
    inside, release = threading.Event(), threading.Event()
    notified: list[str] = []

    def slow(*args: object) -> None:
        if threading.current_thread().name == "a":
            inside.set()
            release.wait(10)

    wrapper = reseed._wrap(slow, "seed", "all", lambda label, *rest: notified.append(
        threading.current_thread().name), threading.local())
    a = threading.Thread(target=wrapper, name="a")
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=wrapper, name="b")
    b.start()
    b.join()
    release.set()
    a.join()
    assert notified == ["b", "a"]


@pytest.mark.parametrize("level", LEVELS)
def test_a_window_that_fails_after_the_file_is_open_lets_the_file_go(level, tmp_path,
                                                                     monkeypatch):
    """The log file is opened (and locked) when the window starts; if the window then
    fails to open, the file is closed and unlocked at once, not when garbage collected:
    a second window on the same path writes there, not beside it."""
    path = tmp_path / "run.rngtrace.jsonl"
    _fail_on(monkeypatch, win, "watch_reseeds", 1)  # after the sink's start()
    window = rngtrace.record(level=level, path=path)
    with pytest.raises(RuntimeError, match="injected"), window:
        pytest.fail("the block must not run")
    monkeypatch.undo()
    assert window._sink._f is None  # closed now, though `window` is still alive
    with rngtrace.record(level=level, path=path) as log:
        torch.rand(2)
    assert log.file.path == str(path)  # not run.rngtrace.<pid>.jsonl
    assert len(rngtrace.load(path).draws) == 1


@pytest.mark.parametrize("level", LEVELS)
def test_steps_limit_leaves_the_users_step_hooks_running(level):
    """``record(steps=1)`` stops from inside torch's loop over the global optimizer step
    hooks; removing its own hook there broke that loop for a hook registered after it
    ("OrderedDict mutated during iteration"). The hook stays, a pass-through, until the
    block ends."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    net = nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    seen: list[int] = []
    with rngtrace.record(steps=1, level=level) as log:
        handle = register_optimizer_step_post_hook(lambda o, a, k: seen.append(1))
        for _ in range(3):
            net(torch.ones(2)).sum().backward()
            opt.step()
    handle.remove()
    assert seen == [1, 1, 1] and log.steps == 1
