"""The light mode, ``record(level="module")``: module attribution from generator states
read around module calls, with no dispatch mode."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import story_models
import torch
from torch import nn

import rngtrace
from rngtrace.errors import RecordError


class Noisy(nn.Module):
    """Draws in its own forward (``randn_like``) and through a child Dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + torch.randn_like(x)
        return self.head(self.inner(x))


def where(log: rngtrace.Log) -> list[tuple[str | None, str | None, int]]:
    return [(d.module, d.module_type, d.step) for d in log.draws]


def test_innermost_module_is_charged_in_the_order_of_consumption():
    net = Noisy()
    with rngtrace.record(level="module") as log:
        net(torch.ones(2, 4))
    assert log.level == "module"
    # Net draws randn_like in its own code, then Sequential calls Linear and Dropout:
    # Net ("") drew first, then Dropout (inner.1); Sequential and the Linears drew
    # nothing of their own, so 2 records, not 4.
    assert where(log) == [("", "Noisy", 0), ("inner.1", "Dropout", 0)]
    assert {d.op for d in log.draws} == {"module"}
    assert all(d.model == "Noisy" and d.phase == "forward" and d.consumed for d in log.draws)
    assert all(d.numel == 0 and d.generator == "default:cpu" for d in log.draws)  # CPU
    # consecutive records partition the stream: the Dropout's draw came after Net's own
    net_rec, drop_rec = log.draws
    assert net_rec.state_after == drop_rec.state_before
    # the user line that called the module (the Dropout is called by Sequential, in torch)
    assert [d.code for d in log.draws] == ["net(torch.ones(2, 4))",
                                           "return self.head(self.inner(x))"]
    assert log.events == []


class Sandwich(nn.Module):
    """Draws in its own code before and after a child that draws."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + torch.rand_like(x)
        x = self.drop(x)
        return x + torch.rand_like(x) + torch.rand_like(x)


def test_a_call_drawing_around_a_child_has_a_record_per_stretch():
    net = Sandwich()
    with rngtrace.record(level="module") as light:
        net(torch.ones(2, 4))
    with rngtrace.record() as op:
        net(torch.ones(2, 4))
    # two stretches of Sandwich's own code (the second: two draws, one record) around
    # the Dropout's: the records chain, as the op level's draws do
    assert where(light) == [("", "Sandwich", 0), ("drop", "Dropout", 0), ("", "Sandwich", 0)]
    assert [d.module for d in op.draws] == ["", "drop", "", ""]
    states = [(d.state_before, d.state_after) for d in light.draws]
    assert states[0][1] == states[1][0] and states[1][1] == states[2][0]
    assert [d.code for d in light.draws] == ["net(torch.ones(2, 4))", "x = self.drop(x)",
                                             "net(torch.ones(2, 4))"]


def test_dropout_in_eval_mode_consumes_nothing():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).eval()
    with rngtrace.record(level="module") as log:
        net(torch.ones(2, 4))
    assert log.draws == []
    net.train()
    with rngtrace.record(level="module") as log:
        net(torch.ones(2, 4))
    assert where(log) == [("1", "Dropout", 0)]


class RandAdd(nn.Module):
    """Draws in its own forward: not a torch container, so read at entry and exit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_calls_in_a_torch_container_read_once_give_the_records_of_the_op_level():
    # Inside nn.Sequential (whose own code cannot draw) a call is read at its exit only:
    # the reads skipped could only have seen what the container's code drew, nothing.
    net = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 4), RandAdd(), nn.Dropout(0.5))
    logs = {}
    for level in ("module", "op"):
        torch.manual_seed(0)
        with rngtrace.record(level=level) as logs[level]:
            net(torch.ones(2, 4))
            net(torch.ones(2, 4))
    light, op = logs["module"], logs["op"]
    assert where(light) == [("0", "Dropout", 0), ("2", "RandAdd", 0), ("3", "Dropout", 0)] * 2
    # one random kernel per module: the states around each record are the op level's
    assert [d.module for d in op.draws] == [d.module for d in light.draws]
    assert [(d.state_before, d.state_after) for d in light.draws] == [
        (d.state_before, d.state_after) for d in op.draws]


def test_a_global_forward_hook_that_draws_is_charged_to_the_module_it_ran_for():
    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            torch.rand(1)

    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        with rngtrace.record(level="module") as log:
            net(torch.ones(2, 4))
    finally:
        handle.remove()
    # with a global hook no call is taken as unable to draw: the Linear is read too
    assert where(log) == [("0", "Linear", 0), ("1", "Dropout", 0)]


class Block(nn.Module):
    """Containers of the user's (read until learned quiet), drawing through Dropouts."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.inner(x))


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.act = Act()
        self.noisy = False  # set to draw in its own code from then on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noisy:
            x = x + torch.rand_like(x)
        return self.act(self.lin(x))


class Act(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


class Mixer(nn.Module):
    """Draws in its own code between two calls of a child that draws nothing (GPT-2's
    attention: c_attn, dropout in scaled_dot_product_attention, c_proj)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = Act(), Act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        x = torch.nn.functional.dropout(x, 0.5)
        return self.b(x)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.mixer = Mixer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.mixer(x)


def _steps(net: nn.Module, n: int, learn: int, monkeypatch: pytest.MonkeyPatch,
           between=None) -> tuple[rngtrace.Log, list[int]]:
    """n forward passes (steps counted by hand), and the generator reads of each."""
    from helpers import count_reads
    from rngtrace.recording.modulelevel import recorder as modulelevel

    monkeypatch.setattr(modulelevel.ModuleRecorder, "learn_after", learn)
    reads = count_reads(monkeypatch)
    per_step = []
    torch.manual_seed(0)
    with rngtrace.record(level="module") as log:
        for i in range(n):
            if between is not None:
                between(i)
            reads[0] = 0
            net(torch.ones(2, 4))
            per_step.append(reads[0])
    return log, per_step


def _records(log: rngtrace.Log) -> list[tuple]:
    return [(d.module, d.state_before, d.state_after) for d in log.draws]


def test_calls_learned_quiet_are_not_read_and_change_no_record(monkeypatch):
    net = Net()
    every, reads_every = _steps(net, 5, 0, monkeypatch)
    learned, reads_learned = _steps(net, 5, 2, monkeypatch)
    assert _records(learned) == _records(every)
    assert [d.module for d in every.draws[:3]] == ["blocks.0.drop", "blocks.1.drop", "mixer"]
    assert learned.events == every.events == []
    # two calls to learn; then Block, Inner and Act are not read, Mixer's children stay
    # read (their neighbours draw: skipping them would mix their draws with Mixer's)
    assert reads_learned[:2] == reads_every[:2]
    assert reads_learned[2:] == [reads_learned[2]] * 3 and reads_learned[2] < reads_every[2]
    assert reads_every[2] == 2 * 12  # the net, 2 x (block, inner, act, drop), mixer, 2 acts
    assert reads_learned[2] == 2 * 6  # the net, 2 drops, mixer, its 2 acts


def test_a_quiet_call_that_starts_drawing_is_said_and_read_again(monkeypatch):
    net = Net()
    inner = net.blocks[1].inner

    def between(i: int) -> None:
        inner.noisy = i >= 3

    log, reads = _steps(net, 5, 2, monkeypatch, between)
    mods = [d.module for d in log.draws]
    assert mods[:3] * 3 == mods[:9] == ["blocks.0.drop", "blocks.1.drop", "mixer"] * 3
    # the 4th pass: Inner draws in its own code while not read. The draw is charged to
    # the call open (the model), and an event says which quiet calls ran meanwhile
    assert mods[9:13] == ["blocks.0.drop", "", "blocks.1.drop", "mixer"]
    assert log.draws[10].module_type == "Net"
    assert [e.kind for e in log.events] == ["unread"]
    event = log.events[0]
    assert event.generator == "default:cpu" and event.before == 10
    assert event.detail == (
        "the next record of Net (the model) may hold draws of blocks.0, blocks.1, "
        "blocks.1.inner, blocks.1.inner.act, not read then (they had drawn nothing in 2 "
        "calls); they are read from now on")
    # the 5th pass reads them again: the draw is charged to Inner
    assert mods[13:] == ["blocks.0.drop", "blocks.1.inner", "blocks.1.drop", "mixer"]
    assert reads[3] == reads[2] < reads[4]
    # against a run where it never draws, the diff's cause is the record charged to the
    # model, and it says why that record may be another call's
    inner.noisy = False
    quiet, _ = _steps(net, 5, 2, monkeypatch)
    cause = rngtrace.diff(quiet, log, labels=("quiet", "noisy")).cause
    assert cause.kind == "inserted"
    assert cause.summary == "draws only in noisy: in (root) (Net), 1 draw"
    assert cause.detail.startswith(
        "The light mode was not reading some module calls then: the next record of Net "
        "(the model) may hold draws of blocks.0, blocks.1, blocks.1.inner")


def test_a_call_learned_quiet_in_training_is_read_again_in_eval(monkeypatch):
    class EvalNoise(nn.Module):  # draws in eval mode only
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if self.training else x + torch.rand_like(x)

    net = nn.ModuleDict({"noise": EvalNoise()})
    model = Noisy()
    model.head = net["noise"]  # type: ignore[assignment]

    def between(i: int) -> None:
        model.train(i < 3)

    log, reads = _steps(model, 5, 2, monkeypatch, between)
    assert reads[2] < reads[1]  # the 3rd pass (training) does not read it (only quiet)
    assert [d.module for d in log.draws[-4:]] == ["", "head", "", "head"]
    assert log.events == []


def test_story_training_per_step_and_outside():
    model = story_models.TinyViT()
    with rngtrace.record(level="module") as log:
        story_models.train(model, steps=3)
    # iter(DataLoader) draws random_ on the default generator before the first forward:
    # one outside record at step 0; then each step both blocks' attention dropout draws:
    # 1 + 3 steps x 2 blocks = 7 records.
    assert where(log) == [(None, None, 0)] + [
        (f"blocks.{b}.attn.attn_drop", "Dropout", s) for s in range(3) for b in range(2)]
    assert log.draws[0].phase == "other" and log.draws[0].model is None
    assert [d.index for d in log.draws] == list(range(7))
    assert log.steps == 3
    assert log.generators["default:cpu"].initial_seed == 0
    assert ("TinyViT", "blocks.1.mlp.2") in (log.called or [])
    assert ("TinyViT", "head.weight") in (log.with_grad or [])
    stats = {s.module: s.draws for s in log.module_stats()}
    assert stats == {None: 1, "blocks.0.attn.attn_drop": 3, "blocks.1.attn.attn_drop": 3}


def test_outside_draws_between_steps_are_charged_to_their_step():
    net = Noisy()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with rngtrace.record(level="module") as log:
        for _ in range(2):
            torch.rand(3)  # outside any module call
            net(torch.ones(2, 4)).sum().backward()
            opt.step()
        torch.rand(1)  # after the last step, seen when the window closes
    # per step: outside, Net, Dropout = 3 records; 2 steps + the final outside = 7
    assert where(log) == [(None, None, 0), ("", "Noisy", 0), ("inner.1", "Dropout", 0),
                          (None, None, 1), ("", "Noisy", 1), ("inner.1", "Dropout", 1),
                          (None, None, 2)]


def test_steps_window_stops_and_restores_module_call():
    model = story_models.TinyViT()
    call = nn.Module.__call__
    with rngtrace.record(level="module", steps=2) as log:
        assert nn.Module.__call__ is not call  # the window's wrapper
        story_models.train(model, steps=4)
        assert nn.Module.__call__ is call  # restored at the 2nd step
    # 1 outside (DataLoader) + 2 steps x 2 dropouts; steps 3 and 4 are not recorded
    assert len(log.draws) == 5 and log.steps == 2 and log.complete
    assert max(d.step for d in log.draws) == 1


def test_transparent_bit_identical():
    def run(light: bool):
        torch.manual_seed(3)
        model = story_models.TinyViT()
        if light:
            with rngtrace.record(level="module"):
                losses = story_models.train(model, steps=3)
        else:
            losses = story_models.train(model, steps=3)
        return (losses, [p.detach().clone() for p in model.parameters()],
                [p.grad.clone() for p in model.parameters()], torch.get_rng_state())

    a, b = run(False), run(True)
    assert a[0] == b[0]
    for x, y in zip(a[1] + a[2], b[1] + b[2], strict=True):
        assert torch.equal(x, y)
    assert torch.equal(a[3], b[3])


def test_reseed_is_an_event_not_a_draw():
    net = Noisy()
    with rngtrace.record(level="module") as log:
        net(torch.ones(2, 4))
        torch.manual_seed(5)
        net(torch.ones(2, 4))
    assert len(log.draws) == 4  # 2 per call
    assert [(e.kind, e.before) for e in log.events] == [("reseed", 2)]
    assert "manual_seed(5)" in log.events[0].detail


def test_records_written_in_batches_keep_their_order_with_events(tmp_path, monkeypatch):
    """Records are handed to the sink at optimizer steps, every BATCH records and before
    each event: with no optimizer and a batch of 3, a file and memory get the same log,
    the reseed event between the draws it separates."""
    from rngtrace.recording.basics.generators import state_text
    from rngtrace.recording.window import notes

    monkeypatch.setattr(notes, "BATCH", 3)
    net = Noisy()

    def run(path=None) -> rngtrace.Log:
        torch.manual_seed(1)
        with rngtrace.record(level="module", path=path) as log:
            for i in range(3):
                if i == 2:
                    torch.rand(1)  # an outside record (right before the reseed, it
                    # would be merged into the reseed)
                net(torch.ones(2, 4))  # 2 records each
            torch.manual_seed(5)
            net(torch.ones(2, 4))
        return log if path is None else rngtrace.load(path)

    mem, streamed = run(), run(tmp_path / "batches.rngtrace.jsonl")
    assert mem.draws == streamed.draws and mem.events == streamed.events
    assert [d.index for d in mem.draws] == list(range(9))
    assert where(mem)[4] == (None, None, 0)
    assert [(e.kind, e.before) for e in mem.events] == [("reseed", 7)]
    # after the reseed, Noisy's own randn_like starts from the seeded state
    torch.manual_seed(5)
    seeded = state_text(bytes(torch.get_rng_state().tolist()), "cpu")
    assert where(mem)[7:] == [("", "Noisy", 0), ("inner.1", "Dropout", 0)]
    assert mem.draws[7].state_before == seeded != mem.draws[5].state_before


def test_a_recorder_failure_is_an_error_event_and_changes_nothing(monkeypatch):
    """Reading the generators fails from the first step on: module calls, optimizer
    steps and the window's end go on, with the same losses, and the log says so."""
    from rngtrace.recording.basics.generators import DefaultGen

    def run(broken: bool) -> tuple[list[float], rngtrace.Log | None]:
        torch.manual_seed(3)
        model = story_models.TinyViT()
        if not broken:
            return story_models.train(model, steps=2), None
        with rngtrace.record(level="module") as log:
            def fail(self):
                raise OSError("no state today")

            monkeypatch.setattr(DefaultGen, "read", fail)
            losses = story_models.train(model, steps=2)
        return losses, log

    expected, _ = run(False)
    with pytest.warns(RuntimeWarning, match="could not follow"):
        losses, log = run(True)
    assert losses == expected and log is not None and log.complete
    assert log.draws == [] and log.steps == 2
    assert {e.kind for e in log.events} == {"error"}
    assert "OSError: no state today" in log.events[0].detail


def test_two_models_of_one_class_are_told_apart_as_by_the_op_recorder():
    nets = Noisy(), Noisy()
    logs = []
    for level in ("op", "module"):
        with rngtrace.record(level=level) as log:
            for net in nets:
                net(torch.ones(2, 4))
        logs.append(log)
    op, light = logs
    assert [d.model for d in light.draws] == ["Noisy", "Noisy", "Noisy#2", "Noisy#2"]
    assert list(dict.fromkeys(d.model for d in op.draws)) == ["Noisy", "Noisy#2"]


def test_windows_do_not_nest():
    with rngtrace.record(level="module"), pytest.raises(RecordError), rngtrace.record():
        pass
    with rngtrace.record(), pytest.raises(RecordError), rngtrace.record(level="module"):
        pass
    with pytest.raises(RecordError):
        rngtrace.record(level="module", steps=0)


def test_exception_in_forward_keeps_the_stack_and_marks_incomplete():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    net = Noisy()
    boom = nn.Sequential(nn.Dropout(0.5), Boom())
    with pytest.raises(ValueError), rngtrace.record(level="module") as log:
        with pytest.raises(ValueError):
            boom(torch.ones(3))
        net(torch.ones(2, 4))
        raise ValueError("out")
    # Dropout inside the failed call, then Net's two: the failed call left no frame open
    assert where(log) == [("0", "Dropout", 0), ("", "Noisy", 0), ("inner.1", "Dropout", 0)]
    assert [d.model for d in log.draws] == ["Sequential", "Noisy", "Noisy"]
    assert not log.complete


def test_other_threads_are_ignored():
    net = Noisy()
    with rngtrace.record(level="module") as log:
        t = threading.Thread(target=lambda: net.inner(torch.ones(2, 4)))
        t.start()
        t.join()
    # the thread's Dropout draw is not attributed to its module; it is seen at the
    # window's end as consumption outside any call of the recording thread
    assert where(log) == [(None, None, 0)]


class DropoutData(torch.utils.data.Dataset):
    """Calls a Dropout module in ``__getitem__``, i.e. inside the worker process."""

    def __init__(self) -> None:
        self.drop = nn.Dropout(0.5)

    def __len__(self) -> int:
        return 4

    window = None  # the parent's window, inherited by the forked worker

    def __getitem__(self, i: int) -> torch.Tensor:
        self.drop(torch.ones(3))
        # what the worker's inherited copy of the window recorded (it must stay idle)
        w = DropoutData.window
        return torch.tensor(w._next_index() if w._thread == -1 else -1)


def test_dataloader_workers_are_not_recorded(tmp_path):
    path = tmp_path / "workers.rngtrace.jsonl"
    loader = torch.utils.data.DataLoader(DropoutData(), batch_size=2, num_workers=1)
    DropoutData.window = window = rngtrace.record(level="module", path=path)
    with window:
        batches = list(loader)
    assert [b.tolist() for b in batches] == [[0, 0], [0, 0]]
    # The workers' Dropout calls (4 items) are theirs; the parent sees only iter()'s
    # random_ for the workers' base seed: 1 outside record, and an intact file.
    assert where(rngtrace.load(path)) == [(None, None, 0)]


@pytest.mark.slow
def test_save_load_and_show(tmp_path):
    model = story_models.TinyViT()
    path = tmp_path / "light.rngtrace.jsonl"
    with rngtrace.record(level="module", path=path) as streamed:
        story_models.train(model, steps=2)
    loaded = rngtrace.load(path)
    assert loaded.level == "module" and streamed.level == "module"
    assert where(loaded) == [(None, None, 0)] + [
        (f"blocks.{b}.attn.attn_drop", "Dropout", s) for s in range(2) for b in range(2)]
    torch.manual_seed(0)
    model = story_models.TinyViT()
    with rngtrace.record(level="module") as mem:
        story_models.train(model, steps=2)
    assert [d for d in mem.draws] == loaded.draws
    out = subprocess.run([sys.executable, "-m", "rngtrace", "show", str(path)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr
    assert "blocks.1.attn.attn_drop" in out.stdout
    out = subprocess.run([sys.executable, "-m", "rngtrace", "show", str(path), "--limit", "1"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ""})
    assert "... 4 more records (--limit 0 lists them all)" in out.stdout  # as counted above


def test_diff_at_module_granularity():
    def run(extra: bool) -> rngtrace.Log:
        torch.manual_seed(0)
        model = story_models.TinyViT()
        if extra:  # one more Dropout called at the start of the second block
            blk = model.blocks[1]
            blk.extra = nn.Dropout(0.1)
            forward = blk.forward
            blk.forward = lambda x: forward(blk.extra(x))
        with rngtrace.record(level="module") as log:
            story_models.train(model, steps=3)
        return log

    a, b = run(False), run(True)
    d = rngtrace.diff(a, b)
    # A: outside + 3 steps x 2 dropouts = 7; B adds blocks.1.extra once per step = 10.
    # Per step the extra call comes after block 0's dropout and shifts everything after.
    assert (len(a.draws), len(b.draws)) == (7, 10)
    assert [h.kind for h in d.hunks] == ["equal", "inserted", "shifted", "inserted",
                                         "shifted", "inserted", "shifted"]
    first = d.first_divergence
    assert first.kind == "inserted"
    assert [(x.module, x.step) for x in first.b_draws] == [("blocks.1.extra", 0)]
    assert rngtrace.diff(a, a).identical


@pytest.mark.cuda
def test_cuda_offsets_are_counted():
    net = Noisy().cuda()
    x = torch.ones(2, 4, device="cuda")
    with rngtrace.record(level="module") as log:
        net(x)
    cuda = [d for d in log.draws if d.generator == "default:cuda:0"]
    assert [d.module for d in cuda] == ["inner.1", ""]
    for d in cuda:
        seed_b, off_b = map(int, d.state_before.split(":"))
        seed_a, off_a = map(int, d.state_after.split(":"))
        assert seed_a == seed_b and d.numel == off_a - off_b > 0 and d.numel % 4 == 0
