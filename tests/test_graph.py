"""rngtrace.graph: the log as a networkx graph, DOT pictures (golden files), rendering, CLI.

Golden files live in tests/golden/; after an intended change of the pictures, rewrite
them with ``RNGTRACE_UPDATE_GOLDEN=1 pytest tests/test_graph.py`` and read the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

import rngtrace
from helpers import check_golden, cli, record_story
from rngtrace.diffing import Diff, diff
from rngtrace.graph import OUTSIDE, STATUS, GraphvizNotFound, diff_graph, save, to_networkx

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot program is not installed")


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
        self.scale = nn.Parameter(torch.randn(2))
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.enc(x) * self.scale))


def record_small() -> rngtrace.Log:
    g = torch.Generator().manual_seed(7)
    with rngtrace.record() as log:
        model = Small()
        x = torch.randn(4, 2)  # outside modules, default generator
        torch.rand(3, generator=g)  # outside modules, its own generator
        model(x)
    return log


# -- a GPT-2-like model: 12 identical blocks, HF-style post-init, dropout in forward --

class Attn(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.attn_dropout, self.resid_dropout = nn.Dropout(0.1), nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn(x).chunk(3, -1)
        a = self.attn_dropout((q @ k.transpose(-2, -1)).softmax(-1))
        return self.resid_dropout(self.c_proj(a @ v))


class MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.act, self.dropout = nn.GELU(), nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPTBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(d), Attn(d)
        self.ln_2, self.mlp = nn.LayerNorm(d), MLP(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int = 32, d: int = 8, n_layer: int = 12, n_pos: int = 8) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(n_pos, d)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList(GPTBlock(d) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.apply(self._init_weights)  # post_init: every weight drawn a second time
        self.lm_head.weight = self.wte.weight

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            m.weight.data.normal_(0.0, 0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1])))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


@pytest.fixture(scope="module")
def gpt_log() -> rngtrace.Log:
    torch.manual_seed(0)
    idx = torch.arange(16).reshape(2, 8)
    with rngtrace.record() as log:
        GPT()(idx)
    return log


@pytest.fixture(scope="module")
def story() -> Diff:
    """The README's picture: TinyViT original vs unused_linear, two training steps."""
    logs = [record_story(variant, steps=2) for variant in ("original", "unused_linear")]
    return diff(*logs, labels=("original", "unused_linear"))


def boxes(dot: str) -> list[str]:
    """The labels of the module boxes of a DOT source."""
    return re.findall(r"^\s*n\d+ \[label=<(.*)> ", dot, re.M)


# -- the graph -------------------------------------------------------------------

def test_graph_nodes_tree_and_counts():
    g = to_networkx(record_small())
    # enc.1 (ReLU) drew nothing and is not in the log; enc drew nothing but is an ancestor
    assert set(g) == {"", "enc", "enc.0", "enc.2", "head", "drop", OUTSIDE}
    assert sorted((u, v) for u, v, k in g.edges(data="kind") if k == "child") == [
        ("", "drop"), ("", "enc"), ("", "head"), ("enc", "enc.0"), ("enc", "enc.2")]
    root = g.nodes[""]
    assert (root["name"], root["type"], root["depth"], root["targets"]) == (
        "Small", "Small", 0, ["scale"])
    # Linear(2, 3): weight 2*3 = 6 values, bias 3; Linear(3, 2): 6 + 2; Linear(2, 1): 2 + 1
    assert [(g.nodes[n]["draws"], g.nodes[n]["values"]) for n in ("enc.0", "enc.2", "head")] \
        == [(2, 9), (2, 8), (2, 3)]
    assert (g.nodes["enc"]["draws"], g.nodes["enc"]["type"]) == (0, None)
    # outside: randn(4, 2) = 8 values on the default generator, rand(3) = 3 on its own
    out = g.nodes[OUTSIDE]
    assert (out["kind"], out["draws"], out["values"]) == ("outside", 2, 11)
    assert out["generators"] == {"default:cpu": 1, "generator:1": 1}
    assert out["phases"] == {"other": 2}
    # dropout on the (4, 2) activation in forward: one bernoulli_ of 8 values
    assert g.nodes["drop"]["phases"] == {"forward": 1}
    assert g.nodes["drop"]["ops"] == {"aten::bernoulli_": 1}
    assert g.nodes["drop"]["values"] == 8


def test_graph_stream_order():
    g = to_networkx(record_small())
    assert g.graph["streams"] == {
        "default:cpu": ["enc.0", "enc.2", "", "head", OUTSIDE, "drop"],
        "generator:1": [OUTSIDE],
    }
    assert g.nodes[OUTSIDE]["order"] == {"default:cpu": [4], "generator:1": [0]}
    nexts = sorted((u, v, d["generator"], d["order"]) for u, v, d in g.edges(data=True)
                   if d["kind"] == "next")
    assert nexts == [(OUTSIDE, "drop", "default:cpu", 5), ("enc.0", "enc.2", "default:cpu", 1),
                     ("enc.2", "", "default:cpu", 2), ("head", OUTSIDE, "default:cpu", 4)]
    # the root drew `scale`, then its child head drew: a tree edge that is also a step
    assert g.edges["", "head"] == {"kind": "child", "next": [("default:cpu", 3)]}


def test_graph_revisits_and_draw_nodes():
    torch.manual_seed(0)
    with rngtrace.record() as log:
        a, b = nn.Dropout(0.5), nn.Dropout(0.5)
        x = torch.ones(3)
        for _ in range(2):
            a(x), b(x)
    g = to_networkx(log, draws=True)
    # two models (two separate Dropouts), so keys carry the model; a, b, a, b
    assert g.graph["streams"]["default:cpu"] == ["Dropout", "Dropout#2", "Dropout", "Dropout#2"]
    assert g.edges["Dropout", "Dropout#2"]["next"] == [("default:cpu", 1), ("default:cpu", 3)]
    assert g.nodes["Dropout"]["order"] == {"default:cpu": [0, 2]}
    draws = sorted(n for n, k in g.nodes(data="kind") if k == "draw")
    assert draws == [0, 1, 2, 3]
    assert sorted((u, v) for u, v, k in g.edges(data="kind") if k == "next_draw") == [
        (0, 1), (1, 2), (2, 3)]
    assert sorted(v for u, v, k in g.edges(data="kind") if k == "drew" and u == "Dropout") \
        == [0, 2]
    assert g.nodes[2]["op"] == "aten::bernoulli_"


def test_several_models_are_prefixed():
    torch.manual_seed(0)
    with rngtrace.record() as log:
        nn.Sequential(nn.Linear(2, 2))
        nn.Sequential(nn.Linear(2, 2))
    g = log.to_networkx()
    assert set(g) == {"Sequential", "Sequential:0", "Sequential#2", "Sequential#2:0"}
    assert g.graph["roots"] == ["Sequential", "Sequential#2"]
    assert g.nodes["Sequential#2:0"]["path"] == "0"
    assert g.has_edge("Sequential#2", "Sequential#2:0")


def test_diff_graph_status_and_first_divergence(story):
    g = diff_graph(story)
    assert g.graph["first_divergence"] == "blocks.0.attn.linear"
    status = {n: a["status"] for n, a in g.nodes(data=True) if a["draws"]}
    # default:cpu: embed 2 + pos 1 + qkv 2 + proj 2 = 7 equal, then the unused Linear
    # (weight, bias) inserted in each block, and every later draw of the stream shifted
    assert status["embed"] == status["blocks.0.attn.proj"] == {"equal": 2}
    assert status[""] == {"equal": 1}
    assert status["blocks.0.attn.linear"] == status["blocks.1.attn.linear"] == {"inserted": 2}
    for n in ("blocks.0.mlp.0", "blocks.1.attn.qkv", "head", "blocks.1.attn.attn_drop"):
        assert status[n] == {"shifted": 2}, n
    # outside: the dataset's randn + randint on its own generator are equal; the
    # DataLoader's two random_ (default) and randperm (a generator seeded from them) shifted
    assert status[OUTSIDE] == {"equal": 2, "shifted": 3}
    stream = g.graph["streams"]["default:cpu"]
    assert stream[:6] == ["embed", "", "blocks.0.attn.qkv", "blocks.0.attn.proj",
                          "blocks.0.attn.linear", "blocks.0.mlp.0"]
    assert stream[-4:] == ["blocks.0.attn.attn_drop", "blocks.1.attn.attn_drop"] * 2


def test_identical_diff_has_no_marker():
    torch.manual_seed(0)
    a = record_small()
    torch.manual_seed(0)
    d = diff(a, record_small())
    assert d.identical
    dot = rngtrace.to_dot(d)
    assert "first divergence" not in dot and "the same draws" in dot
    fills = re.findall(r'^\s*n\d+ \[.* fillcolor="([^"]*)"', dot, re.M)
    assert len(fills) == 6 and set(fills) == {STATUS["equal"][0]}  # every box grey


# -- DOT -------------------------------------------------------------------------

def test_dot_golden_small():
    check_golden("small.dot", rngtrace.to_dot(record_small()))


def test_dot_golden_story_diff(story):
    check_golden("story_diff.dot", rngtrace.to_dot(story))


def test_dot_golden_story_diff_depth(story):
    check_golden("story_diff_depth1.dot", rngtrace.to_dot(story, depth=1))


def test_gpt2_sized_picture_is_collapsed(gpt_log):
    # per block: 4 Linear, each drawn 3 times (weight, bias, post-init weight) = 12 draws,
    # plus 3 dropouts in forward; 12 blocks: 180 draws
    assert sum(1 for d in gpt_log.draws if d.module and d.module.startswith("h.")) == 180
    dot = rngtrace.to_dot(gpt_log)
    labels = boxes(dot)
    # wte, wpe, lm_head, drop, and one block's 4 Linear + 3 Dropout
    assert len(labels) == 11, labels
    assert "h.0 … h.11" in dot and "\u00d712 identical" in dot
    assert not re.search(r"h\.([1-9]|10)\b", dot)  # h.1 ... h.10 are not drawn
    full = rngtrace.to_dot(gpt_log, collapse=False)
    assert len(boxes(full)) == 4 + 12 * 7
    shallow = boxes(rngtrace.to_dot(gpt_log, depth=1))
    # wte, wpe, h, lm_head, drop; h holds 180 draws: 144 init, 36 forward
    assert len(shallow) == 5
    h = next(b for b in shallow if b.startswith("<b>h</b>"))
    assert "180 draws" in h and "init 144 · forward 36" in h


def test_collapse_needs_equal_neighbours():
    torch.manual_seed(0)
    with rngtrace.record() as log:
        nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(3, 3), nn.Linear(2, 2))
    labels = boxes(rngtrace.to_dot(log))
    # 0 and 1 draw alike; 2 differs, and 3 is not next to 0 ... 1
    assert [re.match(r"<b>(.*?)</b>", b).group(1) for b in labels] == ["0 … 1", "2", "3"]


def test_to_dot_rejects_other_things():
    with pytest.raises(rngtrace.RngtraceError, match="Log or a Diff"):
        rngtrace.to_dot("log.jsonl")
    with pytest.raises(rngtrace.RngtraceError, match="depth"):
        rngtrace.to_dot(record_small(), depth=-1)


# -- rendering and the CLI ------------------------------------------------------------

@needs_dot
def test_render_svg_names_the_modules(tmp_path, story):
    out = save(story, tmp_path / "story.svg")
    svg = Path(out).read_text(encoding="utf-8")
    assert svg.startswith("<?xml")
    for name in ("embed", "qkv", "proj", "linear", "attn_drop", "head", "first divergence"):
        assert name in svg, name


def test_save_without_graphviz_writes_dot(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(GraphvizNotFound, match="install Graphviz"):
        save(record_small(), tmp_path / "small.png")
    assert (tmp_path / "small.dot").read_text(encoding="utf-8").startswith("digraph")
    assert not (tmp_path / "small.png").exists()


def test_save_rejects_unknown_extension(tmp_path):
    with pytest.raises(rngtrace.RngtraceError, match="extension"):
        save(record_small(), tmp_path / "small.jpg")


def dot_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("dot", *args, env=env, timeout=120)


@pytest.mark.slow
def test_cli_log_and_diff(tmp_path, story, capsys):
    from rngtrace.cli import main

    a, orig, new = tmp_path / "a.rnglog", tmp_path / "orig.rnglog", tmp_path / "new.rnglog"
    record_small().save(a)
    story.a.save(orig)
    story.b.save(new)
    # for real, in a subprocess: the diff's DOT on stdout, the runs named by their files
    r = dot_cli(str(orig), str(new), "-o", "-", "--depth", "2")
    assert (r.returncode, r.stderr) == (0, "")
    expected = diff(rngtrace.load(orig), rngtrace.load(new), labels=("orig.rnglog", "new.rnglog"))
    assert r.stdout == rngtrace.to_dot(expected, depth=2)
    # without Graphviz: the DOT next to the requested file, one line, exit 2
    env = dict(os.environ, PATH=str(tmp_path / "nothing"))
    r = dot_cli(str(a), "-o", str(tmp_path / "a.svg"), env=env)
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and "install Graphviz" in r.stderr, r.stderr
    assert not (tmp_path / "a.svg").exists()
    assert (tmp_path / "a.dot").read_text() == rngtrace.to_dot(rngtrace.load(a))
    assert main(["dot", str(a), "-o", str(tmp_path / "b.gv"), "--no-collapse"]) == 0
    assert capsys.readouterr().out == f"rngtrace: wrote {tmp_path / 'b.gv'}\n"
    if HAS_DOT:
        assert main(["dot", str(orig), str(new), "-o", str(tmp_path / "d.png")]) == 0
        assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")


def test_cli_bad_input(tmp_path, capsys):
    from rngtrace.cli import main

    bad = tmp_path / "bad.rnglog"
    bad.write_text("not a log\n")
    for args in ([str(bad), "-o", str(tmp_path / "x.dot")],
                 ["a", "b", "c", "-o", "x.dot"],
                 [str(bad), "-o", "x.dot", "--depth", "-1"],
                 [str(bad)]):
        assert main(["dot", *args]) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("rngtrace: error:"), err
    assert not (tmp_path / "x.dot").exists()
    assert main(["dot", "missing.rnglog", "-o", "x.jpg"]) == 2  # checked before loading
    assert "extension must be one of .dot, .gv, .svg" in capsys.readouterr().err


# -- the user's files: inputs and files of other kinds are never written over ---------

def test_cli_refuses_to_write_over_its_input(tmp_path, capsys):
    from rngtrace.cli import main

    log = tmp_path / "run.dot"  # a log that happens to be named .dot
    record_small().save(log)
    before = log.read_bytes()
    assert main(["dot", str(log), "-o", str(log)]) == 2
    err = capsys.readouterr().err
    assert "is also an input" in err and len(err.splitlines()) == 1, err
    assert log.read_bytes() == before


def test_save_never_writes_over_a_log_or_a_foreign_file(tmp_path):
    log = tmp_path / "run.gv"
    record_small().save(log)
    notes = tmp_path / "notes.dot"
    notes.write_text("digraph mine { a -> b }\n")  # hand-written, not rngtrace's
    for path in (log, notes):
        before = path.read_bytes()
        with pytest.raises(rngtrace.RngtraceError, match=r"written by rngtrace|is an rngtrace log"):
            save(record_small(), path)
        assert path.read_bytes() == before
    ours = tmp_path / "ours.dot"
    save(record_small(), ours)
    save(record_small(), ours)  # a picture rngtrace drew may be redrawn
    assert ours.read_text(encoding="utf-8") == rngtrace.to_dot(record_small())


def test_without_graphviz_an_existing_dot_is_not_silently_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    fig = tmp_path / "fig.dot"
    fig.write_text("digraph mine { a -> b }\n")  # the user's own DOT beside fig.svg
    with pytest.raises(GraphvizNotFound, match=r"fig\.dot exists") as info:
        save(record_small(), tmp_path / "fig.svg")
    assert "install Graphviz" in str(info.value)
    assert fig.read_text() == "digraph mine { a -> b }\n"
    fig.unlink()
    save(record_small(), tmp_path / "fig.dot")  # rngtrace's own: replaced, and said so
    with pytest.raises(GraphvizNotFound, match="replacing"):
        save(record_small(), tmp_path / "fig.svg")


def test_a_very_deep_module_path_draws_without_recursion():
    from rngtrace.logfile.format import MAX_DEPTH

    deep = ".".join(f"m{i}" for i in range(3000))  # past Python's recursion limit (1000)
    d = rngtrace.Draw(index=0, op="aten::rand", module=deep, module_type="Linear",
                      target=None, phase="init", step=0, shape=(1,), dtype="float32",
                      device="cpu", numel=1, args={}, generator="default:cpu",
                      state_before="0", state_after="1", consumed=True, site=None,
                      code=None, api=None)
    log = rngtrace.Log(draws=[d])
    g = to_networkx(log)
    assert g.number_of_nodes() == 3001  # the module, its 2999 ancestors and the root ""
    dot = rngtrace.to_dot(log)  # drawn to MAX_DEPTH levels: deeper draws count above
    assert f"m{MAX_DEPTH - 1}" in dot and f"m{MAX_DEPTH}<" not in dot
