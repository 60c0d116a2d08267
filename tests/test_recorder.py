"""record(): interception, attribution, events, window, transparency."""

from __future__ import annotations

import threading

import pytest
import story_models as sm
import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

import rngtrace
from rngtrace.recording.oplevel import ops as _ops

# TinyViT(dim=16, depth=2) draws, per variant, while it is built:
#   embed 2 (weight, bias) + pos 1 (trunc_normal_, std 0.02: nothing is rejected
#   within [-2, 2]) + per block 8 (attn.qkv 2, attn.proj 2, mlp.0 2, mlp.2 2) + head 2
ORIGINAL_INIT_DRAWS = 2 + 1 + 2 * 8 + 2


def build(variant="original"):
    torch.manual_seed(0)
    with rngtrace.record() as log:
        model = sm.TinyViT(variant=variant)
    return model, log


def test_ops_classification_covers_tagged_and_generator_ops():
    ops = set(_ops.random_ops())
    aten = torch.ops.aten
    for op in (aten.uniform_.default, aten.normal_.default, aten.randn.default,
               aten.randperm.default, aten.randperm.generator, aten.bernoulli_.float,
               aten.multinomial.default, aten.poisson.default, aten.native_dropout.default,
               aten._scaled_dot_product_flash_attention_for_cpu.default,
               aten.rrelu_with_noise.default, aten.randint.low):
        assert op in ops, op
    for op in (aten.add.Tensor, aten.empty.memory_format, aten.manual_seed.generator):
        assert op not in ops, op
    # every op carrying the tag is random, whatever its arguments
    assert all(_ops.is_random_overload(o) for o in ops)
    info = _ops.lookup(aten.uniform_.default)
    assert info is not None and info.inplace and info.name == "aten::uniform_"
    assert _ops.lookup(aten.add.Tensor) is None


def test_the_mode_reads_the_classification_tagged_on_each_overload():
    aten = torch.ops.aten
    with rngtrace.record() as log:
        torch.rand(2) + 1
    # what the recording mode's fast path reads (ops.TAG), set when an op is first seen
    assert getattr(aten.rand.default, _ops.TAG).name == "aten::rand"
    assert getattr(aten.add.Tensor, _ops.TAG) is None
    assert [d.op for d in log.draws] == ["aten::rand"]
    # a wrong tag is obeyed: the fast path reads nothing else
    info = getattr(aten.rand.default, _ops.TAG)
    setattr(aten.rand.default, _ops.TAG, None)
    try:
        with rngtrace.record() as log:
            torch.rand(2)
        assert log.draws == []
    finally:
        setattr(aten.rand.default, _ops.TAG, info)


def test_construction_draws_named_by_state_dict_key():
    model, log = build()
    assert len(log.draws) == ORIGINAL_INIT_DRAWS
    assert [d.index for d in log.draws] == list(range(ORIGINAL_INIT_DRAWS))
    targets = [d.target for d in log.draws]
    assert targets == [
        "embed.weight", "embed.bias", "pos",
        "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
        "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
        "blocks.0.mlp.0.weight", "blocks.0.mlp.0.bias",
        "blocks.0.mlp.2.weight", "blocks.0.mlp.2.bias",
        "blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.bias",
        "blocks.1.attn.proj.weight", "blocks.1.attn.proj.bias",
        "blocks.1.mlp.0.weight", "blocks.1.mlp.0.bias",
        "blocks.1.mlp.2.weight", "blocks.1.mlp.2.bias",
        "head.weight", "head.bias",
    ]
    assert set(targets) <= set(model.state_dict())
    first = log.draws[0]
    assert (first.op, first.module, first.module_type, first.phase) == (
        "aten::uniform_", "embed", "Linear", "init")
    assert first.shape == (16, 8) and first.numel == 128 and first.dtype == "float32"
    assert first.device == "cpu" and first.generator == "default:cpu" and first.consumed
    assert first.api == "torch.nn.init.kaiming_uniform_"
    assert first.site is not None and first.site.startswith("examples/story_models.py:")
    assert first.code == "self.embed = nn.Linear(8, dim)"
    assert first.model == "TinyViT" and not first.discarded
    # Linear's bias bound is 1/sqrt(fan_in) = 1/sqrt(8)
    assert log.draws[1].args == {"from": pytest.approx(-8**-0.5), "to": pytest.approx(8**-0.5)}
    pos = log.draws[2]
    assert (pos.module, pos.api, pos.op) == ("", "torch.nn.init.trunc_normal_", "aten::normal_")
    assert pos.args == {"mean": 0.0, "std": 0.02}


def test_states_chain_from_draw_to_draw():
    _, log = build()
    for prev, d in zip(log.draws, log.draws[1:], strict=False):
        assert d.state_before == prev.state_after
        assert d.state_before != d.state_after
        assert len(d.state_before) == 16  # 64-bit digest of the mt19937 state
    assert log.events == []
    assert log.generators["default:cpu"].initial_seed == 0


def test_unused_linear_pitfall_attributed_by_name():
    _, a = build("original")
    _, b = build("unused_linear")
    # two extra Linear layers (weight + bias each): 2 * 2 more draws
    assert len(b.draws) == len(a.draws) + 4
    extra = [d for d in b.draws if d.module and d.module.endswith("attn.linear")]
    assert [(d.module, d.target) for d in extra] == [
        ("blocks.0.attn.linear", "blocks.0.attn.linear.weight"),
        ("blocks.0.attn.linear", "blocks.0.attn.linear.bias"),
        ("blocks.1.attn.linear", "blocks.1.attn.linear.weight"),
        ("blocks.1.attn.linear", "blocks.1.attn.linear.bias"),
    ]
    by_target_a = {d.target: d for d in a.draws}
    by_target_b = {d.target: d for d in b.draws}
    # Everything drawn before the first extra layer starts from the same state...
    assert by_target_b["blocks.0.attn.proj.bias"].state_before == \
        by_target_a["blocks.0.attn.proj.bias"].state_before
    # ...and every draw after it is shifted.
    first_extra = extra[0].index
    later = [d for d in b.draws[first_extra:] if d.module and "linear" not in d.module]
    assert later and all(d.state_before != by_target_a[d.target].state_before for d in later)


def test_unused_parameter_from_randn_is_its_own_target():
    _, log = build("unused_gamma")
    gammas = [d for d in log.draws if d.op == "aten::randn"]
    assert [(d.module, d.module_type, d.target, d.shape) for d in gammas] == [
        ("blocks.0.attn", "Attention", "blocks.0.attn.gamma", (1, 2, 1, 1)),
        ("blocks.1.attn", "Attention", "blocks.1.attn.gamma", (1, 2, 1, 1)),
    ]
    assert gammas[0].code == "self.gamma = nn.Parameter(torch.randn((1, self.num_heads, 1, 1)))"
    assert gammas[0].api == "torch.randn"


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.ln = nn.LayerNorm(4)


class _HFStyle(nn.Module):
    """Hugging Face's pattern: draw in constructors, then again in post_init through
    model.apply(self._init_weights), then tie the LM head to the embedding."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.h = nn.ModuleList([_Block() for _ in range(2)])
        self.lm_head = nn.Linear(4, 10, bias=False)
        self.post_init()

    def post_init(self):
        self.apply(self._init_weights)
        self.lm_head.weight = self.wte.weight

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(0, 0.02)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(0, 0.02)


def test_apply_init_weights_attributed_to_each_target_and_tying_discards():
    with rngtrace.record() as log:
        _HFStyle()
    rows = [(d.module, d.target, d.discarded, d.api) for d in log.draws]
    assert rows == [
        # constructors: Embedding (normal_), 2 x Linear (weight, bias), lm_head weight
        ("wte", "wte.weight", False, "torch.nn.init.normal_"),
        ("h.0.fc", "h.0.fc.weight", False, "torch.nn.init.kaiming_uniform_"),
        ("h.0.fc", "h.0.fc.bias", False, "torch.nn.init.uniform_"),
        ("h.1.fc", "h.1.fc.weight", False, "torch.nn.init.kaiming_uniform_"),
        ("h.1.fc", "h.1.fc.bias", False, "torch.nn.init.uniform_"),
        ("lm_head", "lm_head.weight", True, "torch.nn.init.kaiming_uniform_"),
        # post_init: apply visits children before parents; _init_weights is the root's
        # method, but each draw belongs to the module it initialises
        ("wte", "wte.weight", False, "torch.Tensor.normal_"),
        ("h.0.fc", "h.0.fc.weight", False, "torch.Tensor.normal_"),
        ("h.1.fc", "h.1.fc.weight", False, "torch.Tensor.normal_"),
        ("lm_head", "lm_head.weight", True, "torch.Tensor.normal_"),
    ]
    assert all(d.phase == "init" for d in log.draws)


def test_apply_temporaries_belong_to_the_visited_module():
    def init_fn(m):
        if isinstance(m, nn.Linear):
            torch.randn(3)  # a temporary: no target, but drawn for this module

    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with rngtrace.record() as log:
        model.apply(init_fn)
    assert [(d.module, d.target, d.phase) for d in log.draws] == [
        ("0", None, "init"), ("2", None, "init")]


def test_dataloader_and_dropout_draws():
    model = sm.TinyViT()
    model.train()
    with rngtrace.record(steps=1) as log:
        sm.train(model, steps=1)
    rows = [(d.op, d.module, d.phase, d.generator) for d in log.draws]
    assert rows == [
        # dataset(): its own generator
        ("aten::randn", None, "other", "generator:1"),
        ("aten::randint", None, "other", "generator:1"),
        # iter(DataLoader): base seed on the default generator, the sampler's seed too,
        # then randperm on the sampler's own generator
        ("aten::random_", None, "other", "default:cpu"),
        ("aten::random_", None, "other", "default:cpu"),
        ("aten::randperm", None, "other", "generator:2"),
        # forward: one dropout mask per attention block
        ("aten::bernoulli_", "blocks.0.attn.attn_drop", "forward", "default:cpu"),
        ("aten::bernoulli_", "blocks.1.attn.attn_drop", "forward", "default:cpu"),
    ]
    drop = log.draws[5]
    assert drop.api == "torch.nn.functional.dropout" and drop.module_type == "Dropout"
    assert drop.args == {"p": pytest.approx(0.9)}  # bernoulli_ keeps with 1 - p
    assert drop.shape == (8, 2, 4, 4)  # batch 8, 2 heads, 4 tokens x 4 tokens
    assert log.draws[2].api == "torch.utils.data.dataloader.DataLoader.__iter__"
    assert log.draws[4].api == "torch.utils.data.sampler.RandomSampler.__iter__"
    assert log.draws[4].args == {"n": 32}
    assert log.generators["generator:1"].initial_seed == 1234
    assert log.steps == 1


def test_steps_window_pops_the_mode_and_counts_steps():
    model = sm.TinyViT()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 4, 8)
    with rngtrace.record(steps=2) as log:
        for i in range(4):
            model(x).sum().backward()
            opt.step()
            opt.zero_grad()
            if i >= 1:
                assert _get_current_dispatch_mode() is None  # full speed from here
    # 2 attention dropouts per forward, 2 recorded steps
    assert [d.step for d in log.draws] == [0, 0, 1, 1]
    assert log.steps == 2 and log.complete
    assert ("TinyViT", "blocks.1.attn.attn_drop") in (log.called or [])
    assert ("TinyViT", "head.weight") in (log.with_grad or [])


def test_unused_modules_are_absent_from_usage():
    model = sm.TinyViT(variant="unused_linear")
    with rngtrace.record(steps=1):
        pass
    with rngtrace.record(steps=1) as log:
        sm.train(model, steps=1)
    called = {p for _, p in log.called or []}
    graded = {k for _, k in log.with_grad or []}
    assert "blocks.0.attn.qkv" in called and "blocks.0.attn.linear" not in called
    assert "blocks.0.attn.qkv.weight" in graded
    assert "blocks.0.attn.linear.weight" not in graded


def test_reseed_inside_the_window_is_an_event_with_its_site():
    # torch._dynamo, once imported (by torch.compile, transformers), wraps manual_seed:
    # compare with what torch.manual_seed was before the window, not torch.random's
    before = torch.manual_seed
    with rngtrace.record() as log:
        torch.rand(2)
        torch.manual_seed(3)
        torch.rand(2)
    assert len(log.draws) == 2
    (ev,) = log.events
    assert (ev.kind, ev.generator, ev.before) == ("reseed", "default:cpu", 1)
    assert ev.detail == "torch.manual_seed(3)"
    assert ev.site is not None and ev.site.startswith("tests/test_recorder.py:")
    # the functions are restored when the window closes
    assert torch.manual_seed.__module__ == "torch.random"
    assert torch.manual_seed is before


@pytest.mark.parametrize("level", ["op", "module"])
def test_a_reseed_that_changes_nothing_is_noted_as_such(level):
    def run(reseed: bool) -> rngtrace.Log:
        torch.manual_seed(0)
        with rngtrace.record(level=level) as log:
            if reseed:
                torch.manual_seed(0)  # the state it sets is the state it finds
            nn.Dropout(0.5)(torch.ones(4))
        return log

    quiet, noted = run(False), run(True)
    (ev,) = noted.events
    assert (ev.kind, ev.generator, ev.before) == ("reseed", "default:cpu", 0)
    assert ev.detail == "torch.manual_seed(0) (state unchanged)"
    assert noted.draws == quiet.draws and rngtrace.diff(quiet, noted).identical


def test_draw_in_another_thread_shows_as_a_gap():
    with rngtrace.record() as log:
        torch.rand(2)
        t = threading.Thread(target=lambda: torch.rand(3))
        t.start()
        t.join()
        torch.rand(2)
        t = threading.Thread(target=lambda: torch.rand(3))
        t.start()
        t.join()
    # the thread's draws are not seen as draws (the mode stack is per thread)...
    assert len(log.draws) == 2
    # ...but they moved the default generator: once between the draws, once at the end
    assert [(e.kind, e.generator, e.before) for e in log.events] == [
        ("gap", "default:cpu", 1), ("gap", "default:cpu", 2)]


def test_meta_device_construction_draws_nothing():
    before = torch.get_rng_state()
    with rngtrace.record() as log, torch.device("meta"):
        nn.Linear(3, 3)
    assert [(d.op, d.consumed, d.device, d.generator) for d in log.draws] == [
        ("aten::uniform_", False, "meta", "default:meta")] * 2
    assert log.values == 0
    assert torch.equal(before, torch.get_rng_state())


def test_attention_without_dropout_is_kept_but_consumes_nothing():
    q = torch.randn(1, 2, 4, 8)
    with rngtrace.record() as log:
        nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.0)
    assert [(d.op, d.consumed) for d in log.draws] == [
        ("aten::_scaled_dot_product_flash_attention_for_cpu", False)]


def test_explicit_generators_numbered_by_first_use_with_initial_seed():
    g1 = torch.Generator().manual_seed(11)
    g2 = torch.Generator().manual_seed(22)
    with rngtrace.record() as log:
        torch.rand(2, generator=g1)
        torch.randn(2, generator=g2)
        torch.rand(2, generator=g1)  # a new Python wrapper reaches the mode each time
        torch.rand(2)
    assert [d.generator for d in log.draws] == [
        "generator:1", "generator:2", "generator:1", "default:cpu"]
    assert log.generators["generator:1"].initial_seed == 11
    assert log.generators["generator:2"].initial_seed == 22
    assert log.draws[2].state_before == log.draws[0].state_after
    assert log.events == []


def test_a_generator_given_a_name_is_logged_under_it():
    """Code above the recorder (stable_init) names the generators it makes; the name is
    read when a window first sees the generator draw, and only then."""
    from rngtrace.recording.basics.generators import given_name

    g, h, k = (torch.Generator().manual_seed(s) for s in (1, 2, 3))
    with rngtrace.record() as log:
        torch.rand(2, generator=k)  # first seen unnamed: stays generator:1
        with given_name(g, "stable:w@0"), given_name(h, "stable:w@0"), \
                given_name(k, "late"):
            torch.rand(2, generator=g)
            torch.rand(2, generator=h)  # the same name again in this window
            torch.rand(2, generator=k)
        torch.rand(2, generator=g)  # the name given stays with the generator
    assert [d.generator for d in log.draws] == [
        "generator:1", "stable:w@0", "stable:w@0(2)", "generator:1", "stable:w@0"]
    assert sorted(log.generators) == ["default:cpu", "generator:1", "stable:w@0",
                                      "stable:w@0(2)"]


def test_several_models_in_one_window_stay_distinguishable():
    with rngtrace.record() as log:
        sm.TinyViT()
        sm.TinyViT()
    assert len(log.draws) == 2 * ORIGINAL_INIT_DRAWS
    models = [d.model for d in log.draws]
    assert models == ["TinyViT"] * ORIGINAL_INIT_DRAWS + ["TinyViT#2"] * ORIGINAL_INIT_DRAWS
    assert log.draws[0].target == log.draws[ORIGINAL_INIT_DRAWS].target == "embed.weight"


def test_blocks_built_before_their_container_take_the_container_path():
    with rngtrace.record() as log:
        a = nn.Linear(2, 2)
        b = nn.Linear(2, 2)
        nn.Sequential(a, nn.ReLU(), b)
    assert [(d.model, d.target) for d in log.draws] == [
        ("Sequential", "0.weight"), ("Sequential", "0.bias"),
        ("Sequential", "2.weight"), ("Sequential", "2.bias")]


def test_backward_phase_under_activation_checkpointing():
    from torch.utils.checkpoint import checkpoint

    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x = torch.randn(3, 4, requires_grad=True)
    with rngtrace.record() as log:
        checkpoint(net, x, use_reentrant=False).sum().backward()
    # the recomputation replays the same mask: same state, drawn again in backward
    assert [(d.module, d.phase) for d in log.draws] == [("1", "forward"), ("1", "backward")]
    assert log.draws[0].state_before == log.draws[1].state_before
    # checkpoint restores the generator with torch.set_rng_state: seen as reseeds
    assert [e.kind for e in log.events] == ["reseed", "reseed"]
    assert log.events[0].detail.startswith("torch.set_rng_state(")


def test_transparency_bit_identical_with_and_without_recording():
    def run(recording):
        torch.manual_seed(7)
        g = torch.Generator().manual_seed(3)
        if recording:
            with rngtrace.record() as log:
                model = sm.TinyViT(variant="unused_gamma")
                losses = sm.train(model, steps=2)
                extra = torch.rand(5, generator=g)
        else:
            log = None
            model = sm.TinyViT(variant="unused_gamma")
            losses = sm.train(model, steps=2)
            extra = torch.rand(5, generator=g)
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        return model.state_dict(), losses, grads, extra, torch.get_rng_state(), \
            g.get_state(), log

    plain = run(False)
    traced = run(True)
    assert plain[0].keys() == traced[0].keys()
    assert all(torch.equal(plain[0][k], traced[0][k]) for k in plain[0])
    assert plain[1] == traced[1]
    assert len(plain[2]) == len(traced[2]) > 0
    assert all(torch.equal(a, b) for a, b in zip(plain[2], traced[2], strict=True))
    assert torch.equal(plain[3], traced[3])
    assert torch.equal(plain[4], traced[4])
    assert torch.equal(plain[5], traced[5])
    assert traced[6] is not None and len(traced[6].draws) > 0


def test_exception_propagates_unchanged_and_log_is_incomplete():
    err = KeyError("boom")
    with pytest.raises(KeyError) as info, rngtrace.record() as log:
        nn.Linear(2, 2)
        raise err
    assert info.value is err
    assert _get_current_dispatch_mode() is None
    assert not log.complete and len(log.draws) == 2
    assert [d.target for d in log.draws] == ["weight", "bias"]
    # a new window opens normally afterwards
    with rngtrace.record() as again:
        torch.rand(1)
    assert len(again.draws) == 1


def test_nested_windows_and_bad_arguments_are_refused():
    with rngtrace.record(), pytest.raises(rngtrace.RecordError, match="nested"), \
            rngtrace.record():
        pass
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(rngtrace.RecordError, match="steps"):
            rngtrace.record(steps=bad)
    with pytest.raises(rngtrace.RecordError, match="level"):
        rngtrace.record(level="everything")


def test_summary_table_lists_modules_in_first_draw_order():
    _, log = build("unused_gamma")
    text = str(log)
    lines = text.splitlines()
    assert lines[0] == f"rngtrace log: 23 draws, {log.values:,} values, 1 generator, 0 events"
    assert lines[2].split() == ["module", "type", "draws", "values", "phases", "generators"]
    assert lines[3].split() == ["embed", "Linear", "2", "144", "init:2", "default:cpu"]
    assert lines[4].split() == ["(root)", "TinyViT", "1", "64", "init:1", "default:cpu"]
    assert any(ln.split()[:3] == ["blocks.0.attn", "Attention", "1"] for ln in lines)
    assert repr(log) == "<rngtrace.Log 23 draws, 0 events, complete>"


@pytest.mark.cuda
def test_cuda_dropout_philox_state_and_attribution():
    model = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5)).cuda()
    x = torch.randn(128, 64, device="cuda")
    with rngtrace.record() as log:
        model(x)
        model(x)
    assert [(d.op, d.module, d.phase, d.generator) for d in log.draws] == [
        ("aten::native_dropout", "1", "forward", "default:cuda:0")] * 2
    a, b = log.draws
    seed_a, off_a = map(int, a.state_before.split(":"))
    seed_b, off_b = map(int, b.state_before.split(":"))
    assert a.consumed and seed_a == seed_b
    assert off_b > off_a and (off_b - off_a) % 4 == 0  # Philox advances per kernel
    assert b.state_before == a.state_after


@pytest.mark.cuda
def test_cuda_attention_dropout_and_reseed():
    q = torch.randn(2, 4, 16, 32, device="cuda", dtype=torch.float16)
    with rngtrace.record() as log:
        nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.0)
        nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
        torch.cuda.manual_seed(5)
        torch.rand(3, device="cuda")
    consumed = [d.consumed for d in log.draws]
    assert consumed[0] is False and consumed[1] is True and consumed[-1] is True
    assert [e.kind for e in log.events] == ["reseed"]
    assert log.events[0].generator == "default:cuda:0"


@pytest.mark.cuda
def test_cuda_transparency():
    def run(recording):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(32, 32), nn.Dropout(0.3)).cuda()
        x = torch.randn(16, 32, device="cuda")
        if recording:
            with rngtrace.record():
                y = model(x)
        else:
            y = model(x)
        return y, torch.cuda.get_rng_state(), torch.get_rng_state()

    plain, traced = run(False), run(True)
    assert all(torch.equal(a, b) for a, b in zip(plain, traced, strict=True))


def test_manual_seed_imported_before_the_window_is_explained():
    """``from torch import manual_seed`` before the window keeps an unwrapped reference:
    only its inner ``torch.cuda.manual_seed_all`` reaches a wrapper (and changes nothing
    on a CPU-only machine). The event says whose inner call it is, instead of a bare
    "torch.cuda.manual_seed_all(5) (state unchanged)"."""
    from torch import manual_seed

    with rngtrace.record() as log:
        torch.rand(2)
        manual_seed(5)
        torch.rand(2)
    reseed = [e for e in log.events if e.kind == "reseed"]
    assert len(reseed) == 1 and reseed[0].detail.startswith(
        "torch.cuda.manual_seed_all(5) (the inner call of torch.manual_seed, imported "
        "before the window")
    assert [e.kind for e in log.events] == ["reseed", "gap"]  # the CPU reseed: a gap


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA calls do something here")
def test_cuda_seeding_calls_without_cuda_are_no_event_of_the_cpu():
    """On a CPU-only machine ``torch.cuda.manual_seed_all`` is queued for a CUDA that
    never starts and ``set_rng_state_all([])`` sets nothing (Lightning calls both)."""
    with rngtrace.record() as log:
        torch.cuda.manual_seed_all(3)
        torch.cuda.manual_seed(1)
        torch.cuda.set_rng_state_all([])
        torch.rand(1)
    assert log.events == [] and not torch.cuda.is_initialized()


def test_a_state_set_back_is_marked_and_a_state_from_elsewhere_is_not():
    with rngtrace.record() as log:
        saved = torch.get_rng_state()  # isolate_rng, fork_rng: read, then set back
        torch.rand(2)
        torch.set_rng_state(saved)
        torch.set_rng_state(saved)  # again: changes nothing
        torch.rand(2)
        torch.set_rng_state(saved.clone())  # another object: a restore (from a file...)
    call = "torch.set_rng_state(<state of 5056 bytes>)"
    assert [(e.before, e.detail) for e in log.events] == [
        (1, call + rngtrace.log.SET_BACK), (1, call + rngtrace.log.SET_BACK + " (state "
                                            "unchanged)"), (2, call)]


def test_an_explicit_generator_reseeded_between_draws_is_a_reseed_event():
    """accelerate's SeedableRandomSampler calls ``generator.manual_seed(seed + epoch)``
    at each epoch: Generator methods cannot be wrapped; the next draw tells the new
    state from a seeded one. Another change (``set_state``) stays a gap."""
    g = torch.Generator().manual_seed(1)
    with rngtrace.record() as log:
        torch.randperm(4, generator=g)
        g.manual_seed(43)
        torch.randperm(4, generator=g)
        g.set_state(torch.Generator().manual_seed(5).get_state())
        torch.rand(1, generator=g)
        torch.rand(1, generator=g)
        g.set_state(g.get_state())  # the same state: nothing to see
        torch.rand(3, generator=g)
        other = torch.Generator().manual_seed(7)
        torch.rand(9, generator=other)
        g.set_state(other.get_state())  # a state seeded with 7, moved by 9 draws
        torch.rand(1, generator=g)
    assert [(e.kind, e.generator, e.before, e.detail.split(" (")[0]) for e in log.events] == [
        ("reseed", "generator:1", 1, "Generator.manual_seed(43)"),
        ("reseed", "generator:1", 2, "Generator.manual_seed(5)"),  # a freshly seeded state
        ("gap", "generator:1", 6, "state changed with no traced draw")]
