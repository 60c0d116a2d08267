"""Recording torch.compile-d models (docs/compile.md): transparent, compiled inside the window and
after it, every random node of a compiled graph call logged and named like an eager draw,
checkpoint recomputes marked as replays, eager-vs-compiled diffs explained.

Compiling is slow on a small machine: the models are tiny, and each backend's runs are
made once per module (fixtures) and asserted on by several tests.
"""

from __future__ import annotations

import dataclasses
import inspect
import shutil
import warnings
from typing import Any

import pytest
import torch
import torch._dynamo.utils as dynamo_utils
from torch import nn
from torch.utils.checkpoint import checkpoint

import rngtrace
from rngtrace.recording.compiled.seedmaps import split_fqn

needs_cxx = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                               reason="Inductor on CPU needs a C++ compiler")
STEPS = 3  # training steps; the window records the first 2 (record(steps=2))


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.lin(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks[0](x)
        x = checkpoint(self.blocks[1], x, use_reentrant=False)
        return x + 0.1 * torch.randn_like(x)


def _line(fn: Any, text: str) -> str:
    """``test_compile.py:N`` of the line of ``fn`` containing ``text``."""
    lines, first = inspect.getsourcelines(fn)
    n = next(i for i, s in enumerate(lines) if text in s)
    return f"test_compile.py:{first + n}"


DROP_SITE = _line(Block.forward, "self.drop(")
NOISE_SITE = _line(Net.forward, "randn_like")


@dataclasses.dataclass
class Run:
    losses: list[torch.Tensor]
    params: list[torch.Tensor]
    state: torch.Tensor
    log: rngtrace.Log | None
    graphs_in_window: int  # dynamo graphs compiled while the window was open
    warned: list[str]


def _train(backend: str | None, record: bool, device: str = "cpu",
           level: str = "op") -> Run:
    """Build inside the window (when recording), compile, train STEPS steps with SGD."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    stats = dynamo_utils.counters["stats"]
    before = stats["unique_graphs"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        window = rngtrace.record(steps=2, level=level) if record else None
        log = window.__enter__() if window is not None else None
        try:
            net = Net().to(device)
            fn = torch.compile(net, backend=backend) if backend else net
            opt = torch.optim.SGD(net.parameters(), lr=0.1)
            x = torch.ones(3, 4, device=device)
            losses = []
            for step in range(STEPS):
                loss = fn(x).pow(2).sum()
                loss.backward()
                opt.step()
                opt.zero_grad()
                losses.append(loss.detach())
                if step == 1:
                    inside = stats["unique_graphs"] - before
        finally:
            if window is not None:
                window.__exit__(None, None, None)
    state = torch.cuda.get_rng_state() if device == "cuda" else torch.get_rng_state()
    return Run(losses, [p.detach().clone() for p in net.parameters()], state, log, inside,
               [str(w.message) for w in caught if "rngtrace" in str(w.message)])


def _same(a: Run, b: Run) -> None:
    assert all(torch.equal(x, y) for x, y in zip(a.losses, b.losses, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(a.params, b.params, strict=True))
    assert torch.equal(a.state, b.state)


@pytest.fixture(scope="module")
def inductor() -> tuple[Run, Run]:
    return _train("inductor", record=False), _train("inductor", record=True)


@pytest.fixture(scope="module")
def eager() -> Run:
    return _train(None, record=True)


@needs_cxx
@pytest.mark.slow
def test_inductor_recording_changes_nothing_and_keeps_compiling(inductor, eager):
    plain, recorded = inductor
    _same(plain, recorded)  # losses of all 3 steps (the last after the window), params, state
    assert recorded.graphs_in_window >= 1  # dynamo compiled inside the window
    # The step after the window ran compiled: an eager run draws other dropout masks.
    assert not torch.equal(recorded.losses[2], eager.losses[2])
    assert recorded.warned == []


@needs_cxx
@pytest.mark.slow
def test_inductor_graph_draws_are_named_like_eager_draws(inductor):
    log = inductor[1].log
    assert log is not None
    got = [(d.op, d.module, d.module_type, d.phase, d.step, d.shape, d.graph, d.replay)
           for d in log.draws if d.graph is not None]
    # Per step: one forward graph call with 3 random nodes (2 dropouts, the root's
    # randn_like), one backward graph call recomputing the checkpointed dropout (replay).
    per_step = [("aten::native_dropout", "blocks.0.drop", "Dropout", "forward", False),
                ("aten::native_dropout", "blocks.1.drop", "Dropout", "forward", False),
                ("aten::randn_like", "", "Net", "forward", False),
                ("aten::native_dropout", "blocks.1.drop", "Dropout", "backward", True)]
    want = [(op, mod, kind, phase, step, (3, 4), f"0/0:{phase}", replay)
            for step in (0, 1) for op, mod, kind, phase, replay in per_step]
    assert got == want
    drops = [d for d in log.draws if d.op == "aten::native_dropout"]
    assert all(d.site is not None and d.site.endswith(DROP_SITE) for d in drops)
    noise = [d for d in log.draws if d.op == "aten::randn_like"]
    assert all(d.site is not None and d.site.endswith(NOISE_SITE) for d in noise)


@needs_cxx
@pytest.mark.slow
def test_inductor_graph_draws_carry_the_seed_draws_states(inductor):
    log = inductor[1].log
    assert log is not None
    fwd = [d for d in log.draws if d.graph == "0/0:forward"]
    replays = [d for d in log.draws if d.replay]
    for step in (0, 1):  # the 3 nodes of one graph call share its one seed draw
        call = [d for d in fwd if d.step == step]
        assert len({(d.state_before, d.state_after) for d in call}) == 1
        assert all(d.consumed and d.state_before != d.state_after for d in call)
    # Nothing draws between the two calls: a replay consumes nothing.
    assert fwd[3].state_before == fwd[0].state_after
    assert all(not d.consumed and d.state_before == d.state_after for d in replays)
    # init: 2 Linear(4, 4) x (16 + 4); forward: 2 steps x 3 nodes x (3 x 4); replays: 0
    assert log.values == 2 * (16 + 4) + 2 * 3 * 12


@needs_cxx
@pytest.mark.slow
def test_inductor_log_file_keeps_graph_and_replay(inductor, tmp_path):
    log = inductor[1].log
    assert log is not None
    log.save(tmp_path / "c.jsonl")
    back = rngtrace.load(tmp_path / "c.jsonl")
    assert back.draws == log.draws
    assert sum(d.replay for d in back.draws) == 2 and {d.graph for d in back.draws} == {
        None, "0/0:forward", "0/0:backward"}


@needs_cxx
@pytest.mark.slow
def test_diff_of_eager_and_compiled_pairs_draws_and_says_why(inductor, eager):
    a, b = eager.log, inductor[1].log
    assert a is not None and b is not None
    d = rngtrace.diff(a, b)
    assert d.cause is not None and d.cause.kind == "compiled"
    assert "Philox" in d.cause.summary and "one draw of the default generator" in \
        d.cause.summary
    assert [h.kind for h in d.hunks] == ["equal", "shifted"]  # init equal, the rest shifted
    equal, shifted = d.hunks
    # The 4 init draws are equal; each later one (2 steps x 4: 3 forward, 1 replay)
    # pairs with the eager draw of the same module and op.
    assert len(equal) == 4 and len(shifted) == 8
    assert [(x.module, y.module) for x, y in zip(shifted.a_draws, shifted.b_draws,
                                                 strict=True)] == \
        [(x.module, x.module) for x in shifted.a_draws]
    assert [x.op for x in shifted.a_draws][:2] == ["aten::bernoulli_"] * 2
    assert [y.op for y in shifted.b_draws][:2] == ["aten::native_dropout"] * 2
    assert "compiled: Inductor" in d.report()


@needs_cxx
@pytest.mark.slow
def test_graph_compiled_before_the_window_is_said_once(inductor):
    torch.manual_seed(0)
    net = Net()
    fn = torch.compile(net)
    x = torch.ones(3, 4)
    fn(x)  # compiled here, outside any window: no seed map
    with pytest.warns(RuntimeWarning, match="seed map") as caught, \
            rngtrace.record() as log:
        fn(x)
        fn(x)
    assert sum("seed map" in str(w.message) for w in caught) == 1
    assert [e.kind for e in log.events] == ["compiled"]
    # Each call's one seed draw (3 random nodes: 3 seeds) is logged as it is.
    assert [(d.op, d.shape, d.graph) for d in log.draws] == [
        ("aten::randint", (3,), "inductor:?")] * 2


@pytest.fixture(scope="module")
def aot_eager() -> tuple[Run, Run]:
    return _train("aot_eager", record=False), _train("aot_eager", record=True)


@pytest.mark.slow
def test_aot_eager_is_transparent_and_named_from_the_fx_graph(aot_eager, eager):
    plain, recorded = aot_eager
    _same(plain, recorded)
    # aot_eager runs the eager kernels: the same values as the eager run.
    assert all(torch.equal(x, y) for x, y in zip(plain.losses, eager.losses, strict=True))
    log = recorded.log
    assert log is not None and recorded.warned == []  # seen: said as an event only
    assert [e.kind for e in log.events if e.kind == "compiled"] == ["compiled"]
    got = [(d.op, d.module, d.phase, d.replay) for d in log.draws if d.step == 0
           and d.graph == "fx"]
    # The checkpointed region runs as run_and_save_rng_state / run_with_rng_state
    # higher-order ops, whose fx nodes carry no module: charged to the compiled model.
    assert got == [("aten::native_dropout", "blocks.0.drop", "forward", False),
                   ("aten::native_dropout", "", "forward", False),
                   ("aten::randn_like", "", "forward", False),
                   ("aten::native_dropout", "", "backward", True)]


@pytest.mark.slow
def test_eager_checkpoint_recompute_is_a_replay(eager):
    log = eager.log
    assert log is not None
    replays = [(d.op, d.module, d.phase, d.step) for d in log.draws if d.replay]
    assert replays == [("aten::bernoulli_", "blocks.1.drop", "backward", s) for s in (0, 1)]


@needs_cxx
@pytest.mark.slow
def test_check_finds_nothing_in_these_trainings(inductor, aot_eager, eager):
    # every recompute replays its forward's masks, eager and compiled (docs/check.md)
    for run in (inductor[1], aot_eager[1], eager):
        assert run.log is not None and len(rngtrace.check(run.log)) == 0


@needs_cxx
@pytest.mark.slow
def test_light_mode_says_it_charges_the_compiled_module_whole():
    plain = _train("inductor", record=False)
    light = _train("inductor", record=True, level="module")
    _same(plain, light)
    log = light.log
    assert log is not None
    said = [e.detail for e in log.events if e.kind == "compiled"]
    assert len(said) == 1 and "charges it as a whole" in said[0]
    assert "blocks.0.drop (aten::native_dropout)" in said[0]
    assert "blocks.1.drop (aten::native_dropout)" in said[0]
    assert {(d.module, d.module_type) for d in log.draws if d.phase == "forward"} == {
        ("", "OptimizedModule")}


def test_split_fqn_reads_dynamo_module_names():
    assert split_fqn("L['self'].blocks.0.drop") == ("self", "blocks.0.drop")
    assert split_fqn("L['model']._modules['enc']._modules['1']") == ("model", "enc.1")
    assert split_fqn("L['self']") == ("self", "")
    assert split_fqn("G['net'].x") == (None, "G['net'].x")  # not a frame local: as is


@pytest.mark.cuda
@pytest.mark.slow
def test_inductor_on_cuda_is_transparent_and_named():
    plain = _train("inductor", record=False, device="cuda")
    recorded = _train("inductor", record=True, device="cuda")
    _same(plain, recorded)
    log = recorded.log
    assert log is not None
    graph = [(d.module, d.generator, d.replay) for d in log.draws
             if d.graph is not None and d.step == 0]
    assert graph == [("blocks.0.drop", "default:cuda:0", False),
                     ("blocks.1.drop", "default:cuda:0", False),
                     ("", "default:cuda:0", False),
                     ("blocks.1.drop", "default:cuda:0", True)]


def test_eager_draws_after_a_compile_elsewhere_are_not_taken_for_compiled(monkeypatch):
    # once dynamo has compiled anything in the process, each draw asks whether compiled
    # code runs it; an eager draw is then still noted and written at the step, in a batch
    from rngtrace.recording.window import sinks

    torch.compile(lambda x: torch.sin(x) + 1, backend="eager")(torch.ones(3))
    assert dynamo_utils.counters["stats"]["unique_graphs"] > 0
    batches: list[int] = []
    draws = sinks.MemorySink.draws
    monkeypatch.setattr(sinks.MemorySink, "draws",
                        lambda self, ds: (batches.append(len(ds)), draws(self, ds))[1])
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Dropout(0.5))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with rngtrace.record() as log:
        for _ in range(2):
            net(torch.ones(2, 4)).sum().backward()
            opt.step()
    assert [d.module for d in log.draws] == ["1", "2", "1", "2"]
    assert all(d.graph is None for d in log.draws)
    assert batches == [2, 2]  # one write per step, not one per draw


# A fresh process: opening windows and stable_init import none of torch's compiler
# stack; a program that first compiles inside a window gets it all the same (dynamo's
# guard around the dispatch mode back, Inductor's seed maps installed as it loads).
_FRESH = '''
import sys
import torch
from torch import nn
import rngtrace
from rngtrace.recording.oplevel.mode import RecordingMode

def wrapped():  # torch's dynamo-disabling wrapper around the mode's __torch_dispatch__
    return hasattr(RecordingMode.__dict__["__torch_dispatch__"], "__wrapped__")

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
with rngtrace.record():
    net(torch.ones(2, 4))
    print("own dispatch in the window:", not wrapped())
with rngtrace.record(level="module"):
    net(torch.ones(2, 4))
rngtrace.stable_init(lambda: nn.Linear(4, 4), seed=0)
print("loaded:", [m for m in ("torch._dynamo", "torch._inductor") if m in sys.modules])
print("wrapped after:", wrapped())
with rngtrace.record() as log:
    fn = torch.compile(net)
    print("wrapped once dynamo is imported:", wrapped())
    fn(torch.ones(2, 4))
print([(d.op, d.module, d.graph) for d in log.draws if d.graph is not None])
'''


@needs_cxx
@pytest.mark.slow
def test_no_compiler_stack_is_imported_until_the_program_compiles(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "fresh.py"
    script.write_text(_FRESH)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, check=True).stdout.splitlines()
    assert out == ["own dispatch in the window: True", "loaded: []", "wrapped after: True",
                   "wrapped once dynamo is imported: True",
                   "[('aten::native_dropout', '1', '0/0:forward')]"]
