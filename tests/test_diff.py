"""rngtrace.diff: alignment, causes, consequences, unused consumers, the report.

The story's variants are recorded once per module (model built, then one training step,
so that forward and backward usage is known). In the original TinyViT the default
generator draws 25 times: 21 at init (embed 2, pos 1, per block qkv 2 + proj 2 + mlp 4
= 8, twice, head 2), then the DataLoader's 2 ``random_`` and 2 dropout masks in the one
step; the dataset's generator (seed 1234) draws 2, the sampler's generator 1.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import story_models
import torch
from torch import nn

import helpers
import rngtrace
from helpers import make_draw, record_story
from rngtrace import Draw, GeneratorInfo, Log
from rngtrace.diffing import unused_consumers
from rngtrace.diffing.match import _myers, match

STORY_SITE = "story_models.py"


@pytest.fixture(scope="module")
def story() -> dict[str, Log]:
    logs = {v: record_story(v) for v in story_models.VARIANTS}
    logs["again"] = record_story("original")
    logs["seed1"] = record_story(seed=1)
    logs["reseed"] = record_story(reseed=True)
    return logs


def _line_of(text: str, module: Any = None) -> int:
    """The line of this file (or of ``module``'s file) that contains ``text``."""
    with open(module.__file__ if module is not None else __file__) as f:
        return next(n for n, line in enumerate(f, 1) if text in line)


def _stream(d: rngtrace.Diff, name: str) -> dict[str, int]:
    return next(s.counts for s in d.streams if s.name == name)


def test_same_program_twice_is_identical(story):
    d = rngtrace.diff(story["original"], story["again"])
    assert d.identical
    assert d.first_divergence is None and d.cause is None and d.causes == ()
    assert {h.kind for h in d.hunks} == {"equal"}
    assert _stream(d, "default:cpu") == {"equal": 25}
    assert d.affected_targets == ()
    assert d.report().startswith("rngtrace diff: A and B drew the same values in the same "
                                 "places (28 draws, 3 generators).")


def test_unused_linear_is_an_inserted_module(story):
    d = rngtrace.diff(story["original"], story["unused_linear"])
    c = d.cause
    assert c is d.causes[0]
    assert (c.kind, c.run, c.module, c.module_type) == ("inserted", "b",
                                                        "blocks.0.attn.linear", "Linear")
    assert c.modules == ("blocks.0.attn.linear", "blocks.1.attn.linear")  # same line twice
    assert c.site.endswith(f"{STORY_SITE}:27") and c.code == "self.linear = nn.Linear(dim, dim)"
    assert (c.a_index, c.b_index) == (7, 7)  # after embed 2, pos 1, qkv 2, proj 2
    assert (c.draws, c.values) == (4, 2 * (16 * 16 + 16))
    # every later default draw of A is shifted: 25 - 7 = 18; their parameters: mlp of
    # block 0 (4), qkv and proj of block 1 (4), mlp of block 1 (4), head (2)
    assert c.shifted_draws == 18 and len(c.shifted_targets) == 14
    first = d.first_divergence
    assert (first.kind, first.module, first.target) == ("inserted", "blocks.0.attn.linear",
                                                        "blocks.0.attn.linear.weight")
    assert (first.a_index, first.a_stop, first.b_index, first.b_stop) == (7, 7, 7, 9)
    assert len(first.draws) == 2 and first.a_draws == ()
    assert [h.kind for h in d.hunks if h.generator == "default:cpu"] == [
        "equal", "inserted", "shifted", "inserted", "shifted"]
    assert _stream(d, "default:cpu") == {"equal": 7, "shifted": 18, "inserted": 4}
    # the sampler's generator is seeded from the shifted default stream: a consequence
    later = [x for x in d.causes if x.consequence]
    assert [(x.kind, x.generator) for x in later] == [("seed", "generator:2")]
    assert "never called" in {u.reason for u in d.unused_b}
    assert [u.module for u in d.unused_b] == ["blocks.0.attn.linear", "blocks.1.attn.linear"]
    assert d.unused_a == ()
    text = d.report()
    assert text.splitlines()[2] == ("Cause: module only in B: blocks.0.attn.linear, "
                                    "blocks.1.attn.linear (Linear), 2 draws each")
    assert "B never calls blocks.0.attn.linear, blocks.1.attn.linear" in text


def test_only_the_default_stream_changed_leaves_the_explicit_generator_equal(story):
    d = rngtrace.diff(story["original"], story["unused_linear"])
    assert _stream(d, "generator:1") == {"equal": 2}  # the dataset's generator
    assert all(h.kind == "equal" for h in d.hunks if h.generator == "generator:1")


def test_default_stream_change_in_a_small_program():
    def run(extra: bool) -> Log:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(5)
        with rngtrace.record() as log:
            if extra:
                torch.rand(3)  # e.g. a logging hook
            for _ in range(3):
                torch.rand(2)
                torch.randn(2, generator=g)
        return log

    d = rngtrace.diff(run(False), run(True))
    assert _stream(d, "generator:1") == {"equal": 3}
    assert _stream(d, "default:cpu") == {"shifted": 3, "inserted": 1}
    assert d.cause.kind == "inserted" and d.cause.module is None
    assert d.cause.summary == "draws only in B outside any module (torch.rand), 1 draw"


def test_unused_gamma_is_an_inserted_parameter(story):
    d = rngtrace.diff(story["original"], story["unused_gamma"])
    c = d.cause
    assert (c.kind, c.module, c.target) == ("inserted", "blocks.0.attn", "blocks.0.attn.gamma")
    assert c.summary.startswith("parameter only in B: blocks.0.attn.gamma, "
                                "blocks.1.attn.gamma")
    assert c.code.startswith("self.gamma = nn.Parameter(torch.randn(")
    assert c.shifted_draws == 18  # as for the linear: 25 - 7
    assert [(u.module, u.reason, u.targets) for u in d.unused_b] == [
        ("blocks.0.attn", "no gradient", ("blocks.0.attn.gamma",)),
        ("blocks.1.attn", "no gradient", ("blocks.1.attn.gamma",))]
    assert "B never uses blocks.0.attn.gamma, blocks.1.attn.gamma" in d.report()


def test_reordered_definitions(story):
    d = rngtrace.diff(story["original"], story["reordered"])
    c = d.cause
    assert (c.kind, c.run, c.module) == ("reordered", "both", "blocks.0.attn.qkv")
    assert c.modules == ("blocks.0.attn.qkv", "blocks.1.attn.qkv")
    assert "blocks.0.attn.qkv and blocks.0.attn.proj draw in the other order" in c.summary
    # per block: qkv's 2 draws moved, proj's 2 shifted; then the streams agree again
    assert c.shifted_draws == 4
    assert _stream(d, "default:cpu") == {"equal": 17, "shifted": 4, "inserted": 4,
                                         "removed": 4}
    assert d.affected_targets == tuple(f"blocks.{b}.attn.{m}.{p}" for b in (0, 1)
                                       for m in ("qkv", "proj") for p in ("weight", "bias"))
    assert _stream(d, "generator:2") == {"equal": 1}  # the sampler's seed did not move
    assert [x for x in d.causes if x.consequence] == []
    assert "after it the streams agree again" in d.report()


def test_another_seed(story):
    d = rngtrace.diff(story["original"], story["seed1"])
    c = d.cause
    assert (c.kind, c.generator, c.module) == ("seed", "default:cpu", None)
    assert c.summary == "different seed on default:cpu: 0 in A, 1 in B"
    assert (c.a_index, c.b_index) == (0, 0)
    assert c.shifted_draws == 25 and len(c.shifted_targets) == 21  # everything on it
    assert _stream(d, "generator:1") == {"equal": 2}


def test_reseed_inside_one_run(story):
    d = rngtrace.diff(story["original"], story["reseed"])
    c = d.cause
    assert (c.kind, c.run, c.generator) == ("state", "b", "default:cpu")
    # the reseed is written in helpers.record_story
    assert c.site.endswith(f"helpers.py:{_line_of('# the unexplained state change', helpers)}")
    assert c.code == "torch.manual_seed(0)"
    assert "B calls torch.manual_seed(0) on default:cpu before draw 21" in c.summary
    # init (21 draws) agrees; the DataLoader's 2 random_ and the 2 dropout masks shift
    assert _stream(d, "default:cpu") == {"equal": 21, "shifted": 4}
    assert c.shifted_draws == 4 and c.shifted_targets == ()


class _Trunc(nn.Module):
    """A rejection sampler (trunc_normal_ with a narrow window) after an optional module."""

    def __init__(self, extra: bool) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        if extra:
            self.extra = nn.Linear(4, 4)
        self.t = nn.Parameter(torch.empty(8))
        nn.init.trunc_normal_(self.t, std=1.0, a=-1.0, b=1.0)  # redraws out-of-window values
        self.c = nn.Linear(4, 4)


def test_rejection_sampling_count_change_is_a_consequence_not_a_cause():
    logs = []
    for extra in (False, True):
        torch.manual_seed(1)
        with rngtrace.record() as log:
            _Trunc(extra)
        logs.append(log)
    # with seed 1 the shifted trunc_normal_ redraws once more in B: 2 + 2 + 1 more
    assert (len(logs[0]), len(logs[1])) == (5, 8)
    d = rngtrace.diff(*logs)
    assert [(c.kind, c.consequence) for c in d.causes] == [("inserted", False),
                                                           ("count", True)]
    assert d.cause.module == "extra"
    count = d.causes[1]
    assert count.summary.startswith("torch.nn.init.trunc_normal_ at ")
    assert count.summary.endswith("drew 1 more time in B")
    assert count.detail.endswith("a consequence, not a cause.")
    text = d.report()
    assert "Also:" not in text  # the count change is never presented as a cause
    assert text.index("Consequences (not causes):") > text.index("Cause: module only in B")


def test_a_different_generator():
    class M(nn.Module):
        def __init__(self, g: torch.Generator | None) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.empty(4))
            nn.init.normal_(self.w, generator=g)
            self.c = nn.Linear(2, 2)

    logs = []
    for explicit in (False, True):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(3) if explicit else None
        with rngtrace.record() as log:
            M(g)
        logs.append(log)
    d = rngtrace.diff(*logs)
    assert (d.cause.kind, d.cause.target) == ("generator", "w")
    assert d.cause.summary == "different generator: (root) draws from default:cpu in A, " \
                              "from generator:1 in B"
    assert d.cause.shifted_draws == 2  # c.weight and c.bias on the default stream


def test_shape_changed():
    def run(width: int) -> Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            nn.ModuleDict({"a": nn.Linear(4, width), "b": nn.Linear(4, 4)})
        return log

    d = rngtrace.diff(run(4), run(5))
    assert (d.cause.kind, d.cause.target) == ("changed", "a.weight")
    assert d.cause.summary == "shape changed: a.weight draws (4, 4) in A, (5, 4) in B"
    assert [h.kind for h in d.hunks] == ["changed", "shifted"]


def test_explicit_generators_are_paired_by_state_not_by_number():
    def run(extra: bool) -> Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            if extra:  # a new generator, used first: it takes the name generator:1
                torch.randn(2, generator=torch.Generator().manual_seed(99))
            torch.randn(3, generator=torch.Generator().manual_seed(1234))
        return log

    d = rngtrace.diff(run(False), run(True))
    pairs = {(s.a_name, s.b_name): s.counts for s in d.streams}
    assert pairs == {("generator:1", "generator:2"): {"equal": 1},
                     (None, "generator:1"): {"inserted": 1}}
    assert d.cause.kind == "inserted"


def test_to_dict_is_json():
    def run(names: tuple[str, ...]) -> Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            nn.ModuleDict({n: nn.Linear(2, 2) for n in names})
        return log

    d = rngtrace.diff(run(("a", "c")), run(("a", "b", "c")), labels=("old", "new"))
    data = json.loads(json.dumps(d.to_dict()))
    assert data["identical"] is False and data["labels"] == ["old", "new"]
    assert data["first_divergence"]["kind"] == "inserted"
    assert data["first_divergence"]["module"] == "b"
    assert [h["kind"] for h in data["hunks"]] == ["equal", "inserted", "shifted"]
    assert data["causes"][0]["summary"] == "module only in new: b (Linear), 2 draws"
    assert data["affected_targets"] == ["b.weight", "b.bias", "c.weight", "c.bias"]
    assert data["new_targets"] == ["b.weight", "b.bias"] and data["renamed"] == ""
    # the inserted module's line of code, with its 2 draws (weight and bias)
    assert [(line[1], line[2]) for line in data["causes"][0]["lines"]] == [
        ('nn.ModuleDict({n: nn.Linear(2, 2) for n in names})', 2)]


def _draw(i: int, module: str | None, target: str | None, state: str = "s",
          shape: tuple[int, ...] = (2,)) -> Draw:
    return make_draw(i, module=module, target=target, shape=shape, numel=2,
                     args={"from": -1.0, "to": 1.0}, state_before=f"{state}{i}",
                     state_after=f"{state}{i + 1}", site="net.py:3", code="", api=None)


def test_unused_consumers_only_where_use_was_seen():
    draws = [_draw(0, "fc", "fc.weight"), _draw(1, "extra", "extra.weight"),
             _draw(2, "fc", "fc.scale")]
    assert unused_consumers(Log(draws=draws)) == []  # no forward, no backward seen
    log = Log(draws=draws, called=[("Net", ""), ("Net", "fc")],
              with_grad=[("Net", "fc.weight")])
    got = [(u.module, u.reason, u.targets, u.draws) for u in unused_consumers(log)]
    assert got == [("fc", "no gradient", ("fc.scale",), 1),
                   ("extra", "never called", ("extra.weight",), 1)]


def test_scales_to_long_logs_with_few_differences():
    n = 20_000  # 20,000 distinct draws, 3 inserted ones: 7 hunks, found without blowup
    gen = {"default:cpu": GeneratorInfo("default:cpu", "cpu", 0, "s0")}
    a = Log(draws=[_draw(i, f"l{i}", f"l{i}.w") for i in range(n)], generators=gen)
    extra = {100, 9_000, 19_999}
    b_draws: list[Draw] = []
    for i in range(n):
        if i in extra:
            b_draws.append(_draw(len(b_draws), f"x{i}", f"x{i}.w", state="t"))
        b_draws.append(_draw(len(b_draws), f"l{i}", f"l{i}.w", state="t"))
    d = rngtrace.diff(a, Log(draws=b_draws, generators=gen))
    assert [h.kind for h in d.hunks] == ["shifted", "inserted", "shifted", "inserted",
                                         "shifted", "inserted", "shifted"]
    assert sum(len(h) for h in d.hunks if h.kind == "inserted") == 3


def _lcs(a: list[int], b: list[int]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if x == y else max(row[j + 1], row[j])
    return row[-1]


def test_matcher_is_exact_where_myers_runs_and_always_valid():
    import random

    rnd = random.Random(7)
    for _ in range(500):
        a = [rnd.randrange(4) for _ in range(rnd.randrange(12))]
        b = [rnd.randrange(4) for _ in range(rnd.randrange(12))]
        runs = _myers(a, 0, len(a), b, 0, len(b), 64)
        pairs = [(i + k, j + k) for i, j, n in runs for k in range(n)]
        assert len(pairs) == _lcs(a, b)
        for max_d in (0, 2, 64):  # 0 and 2 force the anchor and greedy fallbacks
            pairs = [(i + k, j + k) for i, j, n in match(a, b, max_d) for k in range(n)]
            assert all(a[i] == b[j] for i, j in pairs)
            assert all(p < q for (p, _), (q, _) in itertools.pairwise(pairs))
            assert all(p < q for (_, p), (_, q) in itertools.pairwise(pairs))


def test_show_lists_unused_consumers(story, tmp_path, capsys):
    from rngtrace.cli import main

    story["unused_linear"].save(tmp_path / "b.jsonl")
    assert main(["show", str(tmp_path / "b.jsonl"), "--by-module"]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("Unused consumers (drew at init, never used in the window):")
    assert [line.split(" at ")[0] for line in out[at + 1:at + 3]] == [
        "  blocks.0.attn.linear (Linear), never called: 2 draws, 272 values",
        "  blocks.1.attn.linear (Linear), never called: 2 draws, 272 values"]


class _Drop(nn.Module):
    def __init__(self, extra: bool) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        if extra:
            self.x = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.a(x))


def test_module_level_logs_say_where_the_state_moved():
    def run(extra: bool) -> Log:
        torch.manual_seed(0)
        with rngtrace.record(level="module") as log:
            _Drop(extra)(torch.ones(2, 4))
        return log

    a, b = run(False), run(True)
    # one "outside" record (the build) and one for the dropout's call, in each log
    assert [(d.op, d.module) for d in b.draws] == [("module", None), ("module", "drop")]
    d = rngtrace.diff(a, b)
    assert [(c.kind, c.a_index) for c in d.causes] == [("consumption", 0)]
    assert d.cause.summary.startswith("the code outside modules ending at draw 0 consumed "
                                      "default:cpu differently in A and B")
    assert d.cause.shifted_draws == 1  # the dropout mask
    assert [h.kind for h in d.hunks] == ["equal", "shifted"]
    # a CPU record says whether the state moved, not by how many values: none are claimed
    assert "it shifts 1 later draw of default:cpu, none of them into a parameter" in (
        d.report())


def test_renamed_module_draws_the_same_values():
    def run(name: str) -> Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            nn.ModuleDict({"a": nn.Linear(2, 2), name: nn.Linear(2, 2)})
        return log

    d = rngtrace.diff(run("b"), run("c"))
    # the same 4 draws from the same states, b's 2 under the name c: the same numbers
    assert d.identical and [h.kind for h in d.hunks] == ["equal"] and d.causes == ()
    assert d.renamed == "b is c (1 module)"
    assert d.hunks[0].b_draws[2].module == "b"  # B's draws carry A's names
    assert d.b is not None and d.b.draws[2].module == "c"  # the log itself is B's
    assert d.report(width=0) == ("rngtrace diff: A and B drew the same values in the same places "
                                 "(4 draws, 1 generator), under other names: b is c (1 module).")


def test_last_draw_same_call_other_end_state_is_a_consumption_cause():
    # the last draw of both logs starts from the same state and ends in different ones
    # (two torch versions): min() of no pieces once raised ValueError
    a = Log(draws=[_draw(0, "fc", "fc.weight"), _draw(1, "fc", "fc.bias")])
    b_last = _draw(1, "fc", "fc.bias")
    b = Log(draws=[_draw(0, "fc", "fc.weight"),
                   Draw(*[getattr(b_last, f) for f in Draw.__slots__][:14], "other", True,
                        *[getattr(b_last, f) for f in Draw.__slots__][16:])])
    d = rngtrace.diff(a, b)
    assert [(c.kind, c.a_index, c.b_index, c.shifted_draws) for c in d.causes] == [
        ("consumption", 1, 1, 0)]
    assert d.causes[0].summary.startswith("the same call consumed default:cpu differently")
    assert "Cause: the same call consumed default:cpu differently" in d.report()


def test_a_deep_crafted_path_costs_linear_memory():
    # a hostile log: a 100,000-part module path, whose every ancestor prefix, once built,
    # took ~10 GB. One path in A, another in B: the diff must finish at once.
    deep = ".".join(["m"] * 100_000)
    a = Log(draws=[_draw(0, deep, deep + ".w")])
    b = Log(draws=[_draw(0, deep + ".x", deep + ".x.w", state="t")])
    import tracemalloc

    tracemalloc.start()
    d = rngtrace.diff(a, b)
    text = d.report()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [c.kind for c in d.causes] == ["removed", "inserted"] or \
        [c.kind for c in d.causes] == ["inserted", "removed"]
    assert d.cause.module in (deep, deep + ".x")
    assert peak < 50 * len(deep)  # a few copies of the path, never one per ancestor
    assert len(text) < 20 * len(deep)


def test_logs_of_different_levels_are_refused():
    def run(level: str) -> Log:
        torch.manual_seed(0)
        with rngtrace.record(level=level) as log:
            _Drop(False)(torch.ones(2, 4))
        return log

    with pytest.raises(rngtrace.RngtraceError, match="cannot compare a op-level log"):
        rngtrace.diff(run("op"), run("module"))


def test_calls_that_drew_nothing_are_never_causes():
    def run(p: float) -> Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            q = torch.ones(1, 2, 4, 8)
            torch.nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=p)
            torch.rand(3)
        return log

    a, b = run(0.0), run(0.0)
    b_extra = run(0.0)
    # attention without dropout is a tagged kernel that moved no state: in the log ...
    assert [(x.op.endswith("attention_for_cpu"), x.consumed) for x in a.draws] == [
        (True, False), (False, True)]
    # ... but with one such call fewer in A, nothing differs
    a_less = Log(draws=[a.draws[1]], generators=a.generators)
    assert rngtrace.diff(a_less, b).identical and rngtrace.diff(a, b_extra).identical


def test_causes_are_ranked_by_what_they_shift():
    def run(extra: bool) -> Log:
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(7)
        with rngtrace.record() as log:
            if extra:
                torch.randn(2, generator=g)  # first, but shifts nothing on its stream
            nn.ModuleDict({n: nn.Linear(2, 2) for n in
                           (("a", "x", "b", "c") if extra else ("a", "b", "c"))})
        return log

    d = rngtrace.diff(run(False), run(True))
    causes = [(c.module, c.generator, c.shifted_draws) for c in d.causes]
    # x: b and c's weight and bias shifted (4); the lone explicit draw shifts nothing
    assert causes == [("x", "default:cpu", 4), (None, "generator:1", 0)]
    text = d.report(width=0)
    assert "Also, shifting no later draw (1):\n  draws only in B outside any module " \
           "(torch.randn), 1 draw at tests/test_diff.py:" in text


def test_the_report_wraps_to_the_width(story, tmp_path, capsys):
    from rngtrace.cli import main

    story["original"].save(tmp_path / "a.jsonl")
    story["unused_linear"].save(tmp_path / "b.jsonl")
    args = ["diff", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    assert main([*args, "--width", "60"]) == 1
    lines = capsys.readouterr().out.splitlines()
    long = [x for x in lines if len(x) > 60]
    assert long == [x for x in long if " " not in x.strip()]  # only unbreakable words
    assert main([*args, "--width", "0"]) == 1
    assert max(map(len, capsys.readouterr().out.splitlines())) > 100


@pytest.mark.slow
def test_draws_moved_into_dataloader_workers_are_said_so():
    from torch.utils.data import DataLoader, Dataset

    class Augmented(Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.ones(2) + torch.rand(2)  # an augmentation

    def run(workers: int) -> Log:
        torch.manual_seed(0)
        with rngtrace.record() as log:
            for _ in DataLoader(Augmented(), batch_size=2, num_workers=workers):
                pass
        return log

    a, b = run(0), run(2)
    d = rngtrace.diff(a, b, labels=("in process", "in workers"))
    c = d.cause
    # 4 items, one torch.rand each, drawn by this process with num_workers=0; with 2
    # workers each draws its batch of 2 in a stream of its own
    assert (c.kind, c.run, c.module, c.draws) == ("removed", "a", None, 4)
    assert c.summary.startswith("draws moved into DataLoader workers: torch.rand at ")
    assert c.summary.endswith(", 4 draws in in process's own process, in workers 0, 1 of "
                              "in workers")
    assert c.detail.startswith("With num_workers > 0 the Dataset draws in worker processes")
    assert len(d.causes) == 1  # the workers' draws are this cause's other side
    assert {s.b_name: s.counts for s in d.streams if s.a_name is None} == {
        "default:cpu@worker0": {"inserted": 2}, "default:cpu@worker1": {"inserted": 2}}
    # without the workers' part (a log that has only the process's draws) it is inferred
    b_own = Log(draws=[x for x in b.draws if x.worker is None], generators=b.generators)
    c = rngtrace.diff(a, b_own, labels=("in process", "in workers")).cause
    assert c.detail.startswith("in process makes them while a DataLoader is iterated (its "
                               "iterator starts at draw 0), in its own process")


def test_cpu_states_are_xxh3_digests_as_the_header_says():
    torch.manual_seed(0)
    with rngtrace.record() as log:
        torch.rand(3)
    state = torch.get_rng_state()
    xxhash = pytest.importorskip("xxhash")
    assert log.meta["cpu_state_digest"] == "xxh3-64"
    assert log.draws[0].state_after == xxhash.xxh3_64_hexdigest(state.numpy().tobytes())


def test_logs_whose_cpu_states_were_digested_otherwise_are_refused(tmp_path, capsys):
    torch.manual_seed(0)
    with rngtrace.record() as log:
        torch.rand(3)
    new = tmp_path / "new.rngtrace.jsonl"
    log.save(new)
    # a log of rngtrace 0.1: the same header without the key (its states were blake2b)
    lines = new.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    del header["meta"]["cpu_state_digest"]
    old = tmp_path / "old.rngtrace.jsonl"
    old.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    with pytest.raises(rngtrace.IncomparableLogsError,
                       match="old digests CPU generator states with blake2b-64, new with "
                             "xxh3-64"):
        rngtrace.diff(rngtrace.load(old), log, labels=("old", "new"))
    with pytest.raises(rngtrace.IncomparableLogsError):
        rngtrace.diff(log, rngtrace.load(old), resumed_at=0)

    from rngtrace.cli import ERROR, main
    assert main(["diff", str(old), str(new)]) == ERROR
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "record both with the same rngtrace version" in err

    # a log built by hand says nothing of its states: compared as before
    assert rngtrace.diff(Log(draws=list(log.draws), generators=log.generators),
                         log).identical
