"""rngtrace.html without a browser: what the pages hold, how they escape a log's text,
the compact draw table, the module tree, the notebook fragments, writing a page, and the
CLI's --html. The pages in a real browser: tests/test_html_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil

import pytest

import rngtrace
from helpers import PAYLOADS, cli, hostile_log, make_draw, record_story
from rngtrace import Log
from rngtrace.cli import main
from rngtrace.html import save, to_html
from rngtrace.html.escape import esc, json_data
from rngtrace.html.page import FIRST_LINE, static
from rngtrace.html.table import Strings, chosen, draw_table
from rngtrace.html.tree import Tree, render


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="rngtrace-data">(.*?)</script>',
                  page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _layers(n: int, steps: int = 0) -> Log:
    """A log of ``n`` numbered blocks drawing alike (weight and bias at init), then
    ``steps`` optimizer steps of one dropout mask per block."""
    draws = []
    for i in range(n):
        for t in ("weight", "bias"):
            draws.append(make_draw(len(draws), module=f"layer.{i}", target=f"layer.{i}.{t}"))
    for s in range(steps):
        for i in range(n):
            draws.append(make_draw(len(draws), module=f"layer.{i}.drop", target=None,
                                   module_type="Dropout", phase="forward", step=s,
                                   op="aten::bernoulli_", args={"p": 0.1}, code="x = drop(x)"))
    return Log(draws=draws, meta={"tool": "rngtrace", "cpu_state_digest": "xxh3-64"})


def test_escape_text_attributes_and_script_data():
    assert esc('<a href="x">\'') == "&lt;a href=&quot;x&quot;&gt;&#x27;"
    assert esc("a\u202eb\x1b") == "a\\u202eb\\x1b"  # shown, not obeyed
    text = json_data({"k": "</script><!--\u2028", "n": float("inf")})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"k": "</script><!--\\u2028", "n": "inf"}


def test_draw_table_keeps_each_kind_of_draw_once():
    log = _layers(4, steps=3)  # 4 x 2 init draws + 3 steps x 4 masks = 20 draws
    tree = Tree(log)
    t = draw_table(log, "run", Strings(), tree.node_of)
    # kinds: 4 blocks x (weight, bias) at init + 4 dropouts (equal across steps) = 12
    assert (t["n"], len(t["sig"]), len(t["sigs"]), t["idx"]) == (20, 20, 12, None)
    assert t["step"] == [[0, 0], [12, 1], [16, 2]]  # step 0 up to draw 11, then 1, 2
    assert t["sig"][8:12] == t["sig"][12:16] == t["sig"][16:20]


def test_a_long_log_keeps_the_first_draws_of_every_module():
    log = _layers(4, steps=3)
    tree = Tree(log)
    rows = chosen(log, tree.node_of, max_rows=10, per_node=1, keep={19})
    # the first draw of each of 8 modules (layer.N, layer.N.drop), and draw 19 kept
    assert [d.index for d in rows] == [0, 2, 4, 6, 8, 9, 10, 11, 19]
    t = draw_table(log, "run", Strings(), tree.node_of, rows)
    assert t["idx"] == [[0, 1], [2, 1], [4, 1], [6, 1], [8, 4], [19, 1]]


def test_tree_folds_numbered_blocks_that_drew_alike():
    html = render(Tree(_layers(4, steps=1)), 0)
    assert "{0..3} \u00d74" in html  # one entry for 4 blocks, each of them inside it
    assert html.count('class="mod fold"') == 1
    assert len(re.findall(r'data-path="layer\.\d"', html)) == 5  # the fold + 4 blocks
    two = render(Tree(_layers(2)), 0)  # two blocks read better whole
    assert "fold" not in two and 'data-path="layer.1"' in two


def test_tree_counts_a_module_with_its_submodules():
    tree = Tree(_layers(3, steps=2))
    (root,) = tree.roots
    layer0 = root.children[0].children[0]
    # layer.0: 2 init draws of its own, 2 masks in its child drop, 12 values each
    assert (layer0.name, layer0.draws, layer0.total, layer0.total_values) == ("0", 2, 4, 48)
    assert layer0.phases == {"init": 2, "forward": 2}


def test_page_frame_policy_and_hashes():
    page = to_html(_layers(3, steps=1), label="run.rngtrace.jsonl", picture=False)
    assert page.startswith(FIRST_LINE)
    policy = re.search(r'Content-Security-Policy" content="([^"]*)"', page).group(1)
    js = base64.b64encode(hashlib.sha256(static("report.js").encode()).digest()).decode()
    assert f"script-src 'sha256-{js}'" in policy and "default-src 'none'" in policy
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    data = _data(page)
    assert data["kind"] == "show" and data["logs"][0]["n"] == 9  # 3 x 2 + 3 masks


@pytest.mark.parametrize("what", ["show", "diff", "check"])
def test_hostile_log_text_is_never_markup(what):
    log = hostile_log()
    if what == "show":
        page = to_html(log, label=PAYLOADS[0])
    elif what == "diff":
        other = Log(draws=log.draws[:3], meta=dict(log.meta))
        page = to_html(rngtrace.diff(log, other, labels=(PAYLOADS[1], PAYLOADS[4])))
    else:
        page = to_html(rngtrace.check(log, labels=[PAYLOADS[0]]), logs=[log])
    body, _, data = page[page.index("<body>"):].partition(
        '<script type="application/json" id="rngtrace-data">')
    assert "window.__pwned" in body  # the text is there, shown
    # ... but no element, attribute or URL of it: every < and quote of it escaped
    assert not re.search(r"<(script|img|svg)[^>]*__pwned", body)
    assert not re.search("on(error|load)=[\"']", body) and "<script" not in body
    data, _, script = data.partition("</script>")
    assert "<" not in data and script.startswith("\n<script>/* rngtrace")
    assert "\u202e" not in page
    assert "window.__pwned" in json.dumps(_data(page))


def test_diff_page_holds_the_hunks_and_the_report_words():
    a, b = record_story("original"), record_story("unused_linear")
    d = rngtrace.diff(a, b, labels=("original", "tidy"))
    page = to_html(d, picture=False)
    data = _data(page)
    assert [h["k"] for h in data["hunks"]] == [h.kind for h in d.hunks]
    first = data["hunks"][data["first"]]
    assert (first["k"], first["an"], first["bn"]) == ("inserted", 0, 2)  # 2 draws: w, b
    assert first["b"] == [[d.first_divergence.b_index, 2]]
    assert f"Cause: {esc(d.cause.summary)}" in page
    assert esc("tidy never calls blocks.0.attn.linear") in page  # the report's own hint
    assert esc(d.report(width=100)) in page


def test_picture_without_graphviz_says_so(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    page = to_html(_layers(2))
    assert "No picture: Graphviz&#x27;s &#x27;dot&#x27; program was not found" in page
    dot = rngtrace.to_dot(_layers(2))
    assert isinstance(dot, str) and dot._repr_svg_() is None
    shown = dot._repr_html_()
    assert "not found" in shown and "digraph rngtrace {" in shown


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_picture_is_an_image_and_draws_inline():
    page = to_html(_layers(2))
    src = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(src).startswith(b"<svg")
    assert rngtrace.to_dot(_layers(2))._repr_svg_().lstrip().startswith("<?xml")


def test_notebook_fragments_have_no_script():
    a, b = _layers(3, steps=1), _layers(4, steps=1)
    for obj in (a, rngtrace.diff(a, b), rngtrace.check(a), hostile_log()):
        shown = obj._repr_html_()
        assert shown.startswith('<div class="rngtrace-nb">') and "<script" not in shown
    assert "rngtrace log: 9 draws" in a._repr_html_()
    assert "module only in B" in rngtrace.diff(a, b)._repr_html_()


def test_save_writes_pages_and_refuses_other_files(tmp_path):
    out = tmp_path / "r.html"
    assert save(_layers(2), out) == str(out)
    save(_layers(3), out)  # its own page: replaced
    assert "rngtrace show" in out.read_text()
    for name, text in (("x.html", "<!DOCTYPE html><p>mine</p>\n"), ("x.py", "print(1)\n")):
        other = tmp_path / name
        other.write_text(text)
        with pytest.raises(rngtrace.RngtraceError, match="never writes over"):
            save(_layers(2), other)
        assert other.read_text() == text
    log = tmp_path / "a.rngtrace.jsonl"
    rngtrace.save(_layers(2), log)
    with pytest.raises(rngtrace.RngtraceError, match="it is an rngtrace log"):
        save(_layers(2), log)


def test_cli_html_for_each_verb(tmp_path, capsys):
    from test_ranks import rank_log

    a, b = tmp_path / "a.rngtrace.jsonl", tmp_path / "b.rngtrace.jsonl"
    rngtrace.save(_layers(3, steps=1), a)
    rngtrace.save(_layers(4, steps=1), b)
    ranks = []
    for r in (0, 1):
        ranks.append(tmp_path / f"t.rank{r}.rngtrace.jsonl")
        rngtrace.save(rank_log(r, seed=r), ranks[-1])
    cases = [(["show", str(a)], 0, "rngtrace show: a.rngtrace.jsonl"),
             (["diff", str(a), str(b)], 1, "Cause: module only in b"),
             (["check", str(a)], 0, "nothing found"),
             (["ranks", *map(str, ranks)], 1, "rngtrace ranks: 2 ranks")]
    for argv, code, words in cases:
        out = tmp_path / f"{argv[0]}.html"
        assert main([*argv, "--html", str(out)]) == code
        assert capsys.readouterr().out == f"rngtrace: wrote {out}\n"
        assert words in out.read_text()


def test_cli_html_for_real_and_show_json_unchanged(tmp_path):
    path = tmp_path / "a.rngtrace.jsonl"
    rngtrace.save(_layers(2), path)
    r = cli("show", str(path), "--html", str(tmp_path / "a.html"))
    assert (r.returncode, r.stdout, r.stderr) == (0, f"rngtrace: wrote {tmp_path}/a.html\n", "")
    j = json.loads(cli("show", str(path), "--json").stdout)
    assert (j["show_json"], j["draws"], len(j["listed"])) == (1, 4, 4)
