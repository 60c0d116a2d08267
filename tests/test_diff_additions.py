"""Streams one run adds that move nothing both runs have: the diff calls the runs agreeing
(exit 0) and lists the additions (rngtrace.diffing.additions)."""

from __future__ import annotations

import story_models
import torch
from torch import nn

import rngtrace
from rngtrace.cli import main


def _stable(variant: str) -> rngtrace.Log:
    torch.manual_seed(0)
    with rngtrace.record(steps=2) as log:
        model = rngtrace.stable_init(lambda: story_models.TinyViT(variant=variant), seed=0)
        story_models.train(model, steps=2)
    return log


def test_two_versions_initialised_by_stable_init_agree_on_what_they_share(tmp_path, capsys):
    old, new = _stable("original"), _stable("unused_linear")
    d = rngtrace.diff(old, new, labels=("old", "new"))
    new_keys = [f"blocks.{i}.attn.linear.{p}" for i in (0, 1) for p in ("weight", "bias")]
    assert d.agrees and not d.identical and d.causes == ()
    assert d.added == tuple(f"stable:{k}@0" for k in new_keys)
    # 21 keyed init draws, 2 of the dataset's generator, 1 of the loader's, 6 dropout masks
    assert sum(len(h) for h in d.hunks if h.kind == "equal") == 30
    assert [(h.kind, [x.target for x in h.b_draws]) for h in d.hunks if h.kind != "equal"] == [
        ("inserted", [k]) for k in new_keys]
    text = d.report(width=0)
    assert text.startswith("rngtrace diff: old and new agree on everything they share (30 "
                           "draws); new adds 4 draws of its own")
    assert "  new: blocks.0.attn.linear.weight, 256 values on " \
           "stable:blocks.0.attn.linear.weight@0 at examples/story_models.py:27" in text
    assert "Cause" not in text and "rngtrace/" not in text and "Hunks" not in text
    assert d.to_dict()["agrees"] is True
    rngtrace.save(old, tmp_path / "old.rngtrace.jsonl")
    rngtrace.save(new, tmp_path / "new.rngtrace.jsonl")
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "old.rngtrace.jsonl"),
                 str(tmp_path / "new.rngtrace.jsonl")]) == 0
    assert "agree on everything they share" in capsys.readouterr().out


def test_a_stream_of_one_run_that_fills_a_parameter_both_have_is_no_addition():
    """B draws b.weight from a generator of its own: values both runs have changed."""
    def run(own: bool) -> rngtrace.Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            m = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Linear(2, 2)})
            if own:
                nn.init.normal_(m["b"].weight, generator=torch.Generator().manual_seed(1))
        return log

    d = rngtrace.diff(run(False), run(True))
    assert d.added == () and not d.agrees
    assert d.causes and d.causes[0].kind == "inserted"


def test_a_stream_of_one_run_drawn_outside_init_is_no_addition():
    """Noise drawn in forward from a generator only B has changes what B computes."""
    def run(noise: bool) -> rngtrace.Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            m = nn.Linear(2, 2)
            g = torch.Generator().manual_seed(1)
            x = torch.ones(1, 2)
            if noise:
                x = x + torch.randn(1, 2, generator=g)
            m(x).sum().backward()
        return log

    d = rngtrace.diff(run(False), run(True))
    assert d.added == () and not d.agrees
