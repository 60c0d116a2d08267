"""stable_init(model): a built model re-initialised in place, keyed by its names."""

from __future__ import annotations

import inspect

import pytest
import story_models
import torch
from torch import nn

import rngtrace
from rngtrace import StableInitError, stable_init
from rngtrace.stable.draws import BLOCK


def layers() -> nn.Module:
    """torch.nn layers whose constructors initialise through reset_parameters() (or
    _reset_parameters(), after their children are built)."""
    return nn.ModuleDict(dict(
        lin=nn.Linear(4, 4), conv=nn.Conv2d(2, 3, 3), emb=nn.Embedding(10, 3, padding_idx=0),
        norm=nn.LayerNorm(4), bn=nn.BatchNorm1d(3), mha=nn.MultiheadAttention(4, 2),
        lstm=nn.LSTM(3, 4), big=nn.Linear(BLOCK // 512 + 1, 512),  # two blocks
    ))


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    assert list(a) == list(b)
    return [k for k in a if not torch.equal(a[k], b[k])]


def test_a_built_model_gets_the_values_its_factory_would_get():
    made = stable_init(layers, seed=0).state_dict()
    torch.manual_seed(5)  # whatever the instance was built with
    again = stable_init(layers(), seed=0).state_dict()
    # lin 2, conv 2, emb 1, norm 2, bn 5 (with its counters), mha 4, lstm 4, big 2
    assert len(made) == 22 and _equal(made, again) == []


def test_a_meta_build_given_memory_gets_the_same_values():
    with torch.device("meta"):
        model = layers()
    model.to_empty(device="cpu")  # uninitialised memory
    before = torch.get_rng_state()
    assert stable_init(model, seed=0) is model
    assert torch.equal(torch.get_rng_state(), before)
    assert _equal(stable_init(layers, seed=0).state_dict(), model.state_dict()) == []


def test_a_module_holding_parameters_without_reset_parameters_is_refused_by_name():
    model = story_models.TinyViT()
    pos = model.pos.detach().clone()
    with pytest.raises(StableInitError, match=(
            r"the model itself \(TinyViT\) holds parameters \(pos\) without one: pass init= "
            r".*or pass a factory instead of the model \(stable_init\(lambda: TinyViT\(\.\.\.\)")):
        stable_init(model, seed=0)
    assert torch.equal(model.pos, pos)  # refused before anything was drawn
    with pytest.raises(StableInitError, match=r"'blocks\.0\.attn' \(Attention\) holds "
                                              r"parameters \(gamma\)"):
        stable_init(nn.ModuleDict({"blocks": story_models.TinyViT(variant="unused_gamma")
                                   .blocks}), seed=0)


def test_init_replaces_reset_parameters_and_keys_by_name_not_order():
    def init(m: story_models.TinyViT) -> None:  # the constructor's draws, in another order
        nn.init.trunc_normal_(m.pos, std=0.02)
        for lin in reversed([x for x in m.modules() if isinstance(x, nn.Linear)]):
            lin.reset_parameters()

    made = stable_init(story_models.TinyViT, seed=3).state_dict()
    assert _equal(made, stable_init(story_models.TinyViT(), seed=3, init=init).state_dict()) == []


def test_layers_deep_copied_from_a_prototype_get_values_of_their_own_in_place():
    """nn.TransformerEncoder deep-copies one built layer: a factory's copies keep the
    prototype's values (keyed by the prototype), in place each layer is keyed by its name."""
    def enc() -> nn.Module:
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2,
                                     enable_nested_tensor=False)

    made = stable_init(enc, seed=0)
    again = stable_init(enc(), seed=0)
    w = "self_attn.in_proj_weight"
    assert torch.equal(made.layers[0].get_parameter(w), made.layers[1].get_parameter(w))
    assert not torch.equal(again.layers[0].get_parameter(w), again.layers[1].get_parameter(w))


def test_recorded_in_place_draws_name_their_stream_parameter_and_line():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    with rngtrace.record() as log:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        stable_init(model, seed=2)  # the line the draws of torch.nn's own layers come from
    assert [(d.generator, d.target, d.phase) for d in log.draws] == [
        (f"stable:{k}@2", k, "init") for k in ("0.weight", "0.bias", "1.weight", "1.bias")]
    assert {d.site for d in log.draws} == {f"tests/test_stable_inplace.py:{line}"}


def test_explicit_generators_are_left_alone_and_the_global_state_is_kept():
    g = torch.Generator().manual_seed(7)

    class Own(nn.Linear):
        def reset_parameters(self) -> None:
            torch.manual_seed(123)  # undone
            nn.init.normal_(self.weight, generator=g)  # as written, from g
            nn.init.zeros_(self.bias)

    m = Own(2, 2)  # its constructor draws once from g
    before = torch.get_rng_state()
    stable_init(m, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    again = torch.Generator().manual_seed(7)
    torch.empty(2, 2).normal_(generator=again)
    assert torch.equal(m.weight, torch.empty(2, 2).normal_(generator=again))  # g's second


def test_bad_arguments():
    with pytest.raises(StableInitError, match="init= is for a model passed in"):
        stable_init(story_models.TinyViT, seed=0, init=lambda m: None)
    with pytest.raises(StableInitError, match="init must be a callable, not int"):
        stable_init(nn.Linear(2, 2), seed=0, init=3)  # type: ignore[arg-type]
    with pytest.raises(StableInitError, match=r"a callable or an nn\.Module, not str"):
        stable_init("model", seed=0)  # type: ignore[arg-type]
