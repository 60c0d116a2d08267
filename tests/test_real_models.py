"""rngtrace.diff on real models: Hugging Face BERT, GPT-2 and T5 and a peft LoRA model,
built from tiny configs (nothing is downloaded), and torch's own TransformerEncoder and
MultiheadAttention.

Each case records construction and one training step (forward and backward, so that use
is known). The reports are compared with golden files in tests/golden/ (``real_*.txt``);
after an intended change, rewrite them with ``RNGTRACE_UPDATE_GOLDEN=1 pytest
tests/test_real_models.py`` and read the diff.

The tiny BERT (2 layers) draws 33 times at init: in the constructors, word, position and
token-type embeddings 1 each, per layer 6 Linear layers x 2 (weight, bias) = 12, the
pooler 2, so 3 + 24 + 2 = 29; then ``post_init`` re-draws every Linear and Embedding
weight once more (biases are zeroed, LayerNorms filled: no draw): 3 + 2 x 6 + 1 = 16.
29 + 16 = 45 init draws. Its forward draws 1 embedding dropout + 2 per layer = 5 masks.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rngtrace
from helpers import check_golden
from rngtrace import Log

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

IDS = torch.arange(6).reshape(1, 6)


def _bert(layers: int = 2, attention_dropout: float = 0.0) -> nn.Module:
    cfg = transformers.BertConfig(
        num_hidden_layers=layers, hidden_size=16, num_attention_heads=2,
        intermediate_size=32, vocab_size=50, max_position_embeddings=16,
        attention_probs_dropout_prob=attention_dropout)
    return transformers.BertModel(cfg)


def _lora() -> nn.Module:
    cfg = peft.LoraConfig(r=2, target_modules=["query", "value"], lora_dropout=0.1)
    return peft.get_peft_model(_bert(), cfg)


class _Wrapped(nn.Module):
    """What DDP does to a model: the same model under ``module.``."""

    def __init__(self) -> None:
        super().__init__()
        self.module = _bert()

    def forward(self, input_ids: torch.Tensor) -> object:
        return self.module(input_ids=input_ids)


def _train_bert(model: nn.Module) -> None:
    model(input_ids=IDS).last_hidden_state.sum().backward()


def _t5(dropout: float) -> nn.Module:
    cfg = transformers.T5Config(d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                                num_decoder_layers=1, vocab_size=50, dropout_rate=dropout)
    return transformers.T5Model(cfg)


def _train_t5(model: nn.Module) -> None:
    model(input_ids=IDS, decoder_input_ids=IDS).last_hidden_state.sum().backward()


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=16,
                                  vocab_size=50)
    return transformers.GPT2LMHeadModel(cfg)


def _train_gpt2(model: nn.Module) -> None:
    model(input_ids=IDS).logits.sum().backward()


def _record(build, train=_train_bert, seed: int = 0) -> Log:
    torch.manual_seed(seed)
    with rngtrace.record() as log:
        model = build()
        model.train()
        if train is not None:
            train(model)
    return log


@pytest.fixture(scope="module")
def bert() -> Log:
    return _record(_bert)


def _causes(d: rngtrace.Diff) -> list[rngtrace.Cause]:
    return [c for c in d.causes if not c.consequence]


def test_bert_counts(bert):
    init = [d for d in bert.draws if d.phase == "init"]
    assert len(init) == 45  # 29 in constructors + 16 in post_init (module docstring)
    # forward: 5 dropout masks, and 2 attention calls (dropout 0) that drew nothing
    fwd = [d for d in bert.draws if d.phase == "forward"]
    assert sum(d.consumed for d in fwd) == 5 and sum(not d.consumed for d in fwd) == 2


def test_an_added_layer_is_one_cause_named_by_its_root(bert):
    d = rngtrace.diff(bert, _record(lambda: _bert(3)), labels=("2 layers", "3 layers"))
    (c,) = _causes(d)
    assert (c.kind, c.run, c.module, c.modules) == ("inserted", "b", "encoder.layer.2",
                                                    ("encoder.layer.2",))
    # constructors 6 Linear x 2 = 12, post_init 6 weights, forward 2 dropout masks
    assert c.draws == 12 + 6 + 2
    assert c.summary == "module only in 3 layers: encoder.layer.2 (8 modules in it draw), " \
                        "20 draws"
    # its lines of code: 6 constructors, the post_init line(s), the 2 dropout calls
    sites = [s for s, _, _ in c.lines]
    assert all(s.startswith("transformers/models/bert/modeling_bert.py:") or
               s.startswith("transformers/modeling_utils.py:") for s in sites)
    assert not any("initialization.py" in s for s in sites)  # the helper is skipped
    assert sum(n for _, _, n in c.lines) == c.draws
    # layer 0 shifts too: post_init re-draws it after the insertion
    assert "encoder.layer.0.attention.self.query.weight" in c.shifted_targets
    assert "re-initialisation pass" in c.detail and "post_init" in c.detail
    # shared parameters listed before the new ones
    text = d.report()
    assert text.index("of both runs start from other values") < text.index(
        "only one run has")
    assert len(d.new_targets) == 12 and all(t.startswith("encoder.layer.2.")
                                            for t in d.new_targets)
    assert max(map(len, text.splitlines())) <= 100
    check_golden("real_bert_added_layer.txt", text)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_lora_adapter_is_the_cause_and_the_prefix_a_rename(bert):
    d = rngtrace.diff(bert, _record(_lora), labels=("bert", "lora"))
    assert d.renamed.startswith("(root) is base_model.model (")
    assert "query is query.base_layer (2 modules)" in d.renamed
    c = d.cause
    # lora_A in 2 layers x (query, value): its Linear's 1 + peft's kaiming_uniform_ 1
    assert (c.kind, c.run, len(c.modules)) == ("inserted", "b", 4)
    assert c.modules[0] == "encoder.layer.0.attention.self.query.lora_A"
    assert c.draws == 4 * 2
    # what it shifts: every later default draw of A, the 5 forward dropout masks
    assert c.shifted_draws == 5
    # 4 adapters x (lora_A, lora_B) weights: 8 new parameters, none of A's shifted
    assert len(d.new_targets) == 8 and d.affected_targets == d.new_targets
    assert d.unused_b == ()  # the frozen base model is called: used
    text = d.report()
    cause = text.split("\n\n")[1]
    assert len(cause.splitlines()) <= 12  # the cause fits on a screen
    assert max(map(len, text.splitlines())) <= 100
    check_golden("real_lora.txt", text)


def test_wrappers_are_renames_and_identical(bert, tmp_path):
    d = rngtrace.diff(bert, _record(_Wrapped), labels=("bert", "wrapped"))
    assert d.identical and d.causes == ()
    # the modules that drew: 3 embeddings, 2 x 6 Linear, the pooler, 5 dropouts = 21
    assert d.renamed == "(root) is module (21 modules)"
    text = d.report()
    check_golden("real_wrapped.txt", text)
    # torch.compile's OptimizedModule: _orig_mod. (construction only: no forward)
    a = _record(_gpt2, train=None)
    b = _record(lambda: torch.compile(_gpt2(), backend="eager"), train=None)
    d = rngtrace.diff(a, b)
    assert d.identical and d.renamed.startswith("(root) is _orig_mod (")
    from rngtrace.cli import main

    a.save(tmp_path / "a.jsonl")
    b.save(tmp_path / "b.jsonl")
    assert main(["diff", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 0


def test_attention_dropout_added_in_forward(bert):
    d = rngtrace.diff(bert, _record(lambda: _bert(attention_dropout=0.1)),
                      labels=("no attention dropout", "attention dropout"))
    (c,) = _causes(d)
    # the 2 attention calls now draw their dropout inside the kernel
    assert (c.kind, c.modules) == ("inserted", ("encoder.layer.0.attention.self",
                                                "encoder.layer.1.attention.self"))
    assert c.summary.startswith("draws only in attention dropout: in encoder.layer.0."
                                "attention.self, encoder.layer.1.attention.self")
    # the first one shifts the masks after it: 2 of layer 0, 2 of layer 1
    assert c.shifted_draws == 4 and c.shifted_targets == ()
    assert d.affected_targets == ()
    check_golden("real_bert_attention_dropout.txt", d.report())


def test_t5_dropout_in_forward():
    a = _record(lambda: _t5(0.0), train=_train_t5)
    b = _record(lambda: _t5(0.1), train=_train_t5)
    assert [d for d in a.draws if d.phase == "forward" and d.consumed] == []
    d = rngtrace.diff(a, b, labels=("dropout 0", "dropout 0.1"))
    causes = _causes(d)
    assert {c.kind for c in causes} == {"inserted"}
    assert sum(c.draws for c in causes) == sum(
        1 for x in b.draws if x.phase == "forward" and x.consumed)
    assert causes[0].shifted_draws >= causes[-1].shifted_draws  # ranked by what they shift
    assert d.affected_targets == ()  # dropout masks initialise nothing
    check_golden("real_t5_dropout.txt", d.report())


def test_gpt2_another_seed():
    d = rngtrace.diff(_record(_gpt2, train=_train_gpt2),
                      _record(_gpt2, train=_train_gpt2, seed=1))
    assert d.cause.summary == "different seed on default:cpu: 0 in A, 1 in B"
    # GPT-2 ties the LM head to the embedding: the head's own draws are discarded
    assert "lm_head.weight" not in d.affected_targets
    check_golden("real_gpt2_seed.txt", d.report())


def test_transformer_encoder_layers_are_named_where_the_copies_live():
    torch.manual_seed(0)
    with rngtrace.record() as log:
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
        enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        enc(torch.ones(3, 1, 8)).sum().backward()
    keys = set(enc.state_dict())
    init = [d for d in log.draws if d.phase == "init"]
    # out_proj weight and bias, in_proj_weight, linear1 and linear2 weight and bias
    assert len(init) == 7
    assert all(d.target in keys and d.copied and d.model == "TransformerEncoder"
               for d in init)
    assert {d.module for d in init} == {"layers.0.self_attn.out_proj", "layers.0.self_attn",
                                        "layers.0.linear1", "layers.0.linear2"}
    from rngtrace.diffing import unused_consumers

    assert unused_consumers(log) == []  # out_proj is used through its weight


def test_multihead_attention_out_proj_is_used_without_backward():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)
            self.extra = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x)[0]

    torch.manual_seed(0)
    with rngtrace.record() as log:
        Net()(torch.ones(3, 1, 8))
    from rngtrace.diffing import unused_consumers

    assert [(u.module, u.reason) for u in unused_consumers(log)] == [
        ("extra", "never called")]


def test_frozen_layers_that_are_called_are_used():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.frozen = nn.Linear(4, 4).requires_grad_(False)
            self.head = nn.Linear(4, 1)
            self.gamma = nn.Parameter(torch.randn(4))  # never used

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.frozen(x))

    torch.manual_seed(0)
    with rngtrace.record() as log:
        Net()(torch.ones(2, 4)).sum().backward()
    from rngtrace.diffing import unused_consumers

    assert [(u.module, u.targets) for u in unused_consumers(log)] == [("", ("gamma",))]


WRAP_TEST = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)


class Wrap(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = Net()


def test_init(rng_snapshot):
    torch.manual_seed(0)
    with rng_snapshot():
        BUILD()
"""


@pytest.mark.slow  # two pytest sessions in this process: several seconds
def test_the_guard_passes_on_a_wrapper(pytester):
    pytester.makepyfile(test_model=WRAP_TEST.replace("BUILD", "Net"))
    pytester.runpytest("--rng-snapshot-update").assert_outcomes(passed=1)
    pytester.makepyfile(test_model=WRAP_TEST.replace("BUILD", "Wrap"))
    pytester.runpytest().assert_outcomes(passed=1)


pytest_plugins = ["pytester"]


@pytest.mark.parametrize("build, train", [
    (lambda: _bert(2, attention_dropout=0.1), _train_bert),
    (_gpt2, _train_gpt2),  # dropout inside attention, between two Conv1D calls
])
def test_light_mode_learned_quiet_calls_change_no_record(build, train, monkeypatch):
    from helpers import count_reads
    from rngtrace.recording.modulelevel import recorder as modulelevel

    reads = count_reads(monkeypatch)
    logs, counts = {}, {}
    for learn in (0, 2):
        monkeypatch.setattr(modulelevel.ModuleRecorder, "learn_after", learn)
        torch.manual_seed(0)
        model = build().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        reads[0] = 0
        with rngtrace.record(level="module") as logs[learn]:
            for _ in range(4):
                train(model)
                opt.step()
                opt.zero_grad()
        counts[learn] = reads[0]
    every, learned = logs[0], logs[2]
    assert [(d.module, d.step, d.state_before, d.state_after) for d in learned.draws] == [
        (d.module, d.step, d.state_before, d.state_after) for d in every.draws]
    assert len(every.draws) >= 4 * 5 and learned.events == every.events == []
    assert counts[2] < 0.8 * counts[0], counts


def test_light_mode_diff_names_attention_dropout_drawn_before_a_child():
    # GPT2Attention draws in its own code (dropout in scaled_dot_product_attention), then
    # calls its child resid_dropout: its record comes first, so the diff sees an insertion
    def record(p: float) -> Log:
        torch.manual_seed(0)
        cfg = transformers.GPT2Config(n_layer=3, n_embd=16, n_head=2, n_positions=16,
                                      vocab_size=50, attn_pdrop=p, attn_implementation="sdpa")
        model = transformers.GPT2LMHeadModel(cfg).train()
        with rngtrace.record(level="module") as log:
            _train_gpt2(model)
        return log

    d = rngtrace.diff(record(0.0), record(0.1), labels=("attn_pdrop 0", "attn_pdrop 0.1"))
    assert d.cause.kind == "inserted"
    assert d.cause.summary.startswith(
        "draws only in attn_pdrop 0.1: in transformer.h.{0..2}.attn (GPT2Attention), 1 draw "
        "each")
