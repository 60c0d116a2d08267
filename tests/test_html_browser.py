"""The HTML pages in a real browser: headless Chromium (Debian's package) driven by
Playwright (examples/browser.py), one browser for the module. Pages made from real
models' logs (a Hugging Face BERT from a tiny config, the story's TinyViT) and from a
hostile log: no console error, the first cause visible, a module opened shows its
draws, the filter filters, and nothing a log carries runs."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch

import rngtrace
from helpers import PAYLOADS, hostile_log, record_story
from rngtrace import Log

browser = pytest.importorskip("browser")  # examples/browser.py
expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(browser.executable() is None, reason="needs Chromium")]


@pytest.fixture(scope="module")
def chrome() -> Any:
    with browser.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def pages(tmp_path_factory: Any) -> dict[str, str]:
    """The pages, written once: name -> path."""
    tmp = tmp_path_factory.mktemp("pages")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2,
                                  intermediate_size=32, vocab_size=50,
                                  max_position_embeddings=16,
                                  attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    with rngtrace.record() as bert:
        model = transformers.BertModel(cfg)
        model(input_ids=torch.arange(6).reshape(1, 6)).last_hidden_state.sum().backward()
    story = rngtrace.diff(record_story("original"), record_story("unused_linear"),
                          labels=("original", "unused_linear"))
    hostile = hostile_log()
    shorter = Log(draws=hostile.draws[:3], meta=dict(hostile.meta))

    def layer() -> torch.nn.Module:
        torch.manual_seed(0)  # the same seed before each layer: a repeated stream
        return torch.nn.Linear(4, 4)

    with rngtrace.record() as seeded:
        torch.nn.Sequential(layer(), layer())
    made = {"bert": (bert, {"label": "bert.rngtrace.jsonl"}), "story": (story, {}),
            "hostile": (hostile, {"label": PAYLOADS[0]}),
            "hostile-diff": (rngtrace.diff(hostile, shorter, labels=PAYLOADS[1:3]), {}),
            "check": (rngtrace.check(seeded, labels=["seeded"]), {"logs": [seeded]})}
    out = {}
    for name, (obj, options) in made.items():
        out[name] = str(tmp / f"{name}.html")
        rngtrace.html.save(obj, out[name], **options)
    out["bert-log"] = bert  # type: ignore[assignment]
    return out


def _open(chrome: Any, path: str) -> tuple[Any, list[str]]:
    """A fresh page on ``path``; the list collects console errors, page errors and
    dialogs (dismissed)."""
    page = chrome.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto("file://" + path)
    page.wait_for_selector("html[data-ready]")
    return page, problems


def _open_module(page: Any, path: str) -> None:
    page.click(f'details.mod[data-path="{path}"] > summary')


def test_show_page_tree_and_filter(chrome, pages):
    page, problems = _open(chrome, pages["bert"])
    log = pages["bert-log"]
    # 45 draws at init, 5 dropout masks in forward (tests/test_real_models.py), and per
    # layer one attention kernel call that drew nothing (dropout 0): 45 + 5 + 2 = 52
    assert page.inner_text(".verdict").startswith("rngtrace log: 52 draws")
    for path in ("embeddings", "embeddings.word_embeddings"):
        _open_module(page, path)
    rows = page.locator('details.mod[data-path="embeddings.word_embeddings"] > .own tbody tr')
    rows.first.wait_for()  # the table is drawn as the module opens
    # its constructor draws the weight, post_init draws it again
    assert rows.count() == 2
    assert rows.nth(0).inner_text().split("\t")[2] == "embeddings.word_embeddings.weight"
    page.fill('#filters input[name="module"]', "attention")
    want = sum(1 for d in log.draws
               if "attention" in (d.module or "").lower() or "attention" in (d.target or ""))
    expect(page.locator("#filter-count")).to_have_text(f"{want} matching draws in the page")
    expect(page.locator("#listing tbody tr")).to_have_count(want)
    assert page.is_hidden('details.mod[data-path="pooler"]')
    assert page.is_visible('details.mod[data-path="encoder"] > summary')
    page.select_option('#filters select[name="phase"]', "forward")
    # per layer two forward draws under "attention": its kernel call, its output dropout
    expect(page.locator("#listing tbody tr")).to_have_count(4)
    assert problems == []


def test_diff_page_cause_hunks_and_links(chrome, pages):
    page, problems = _open(chrome, pages["story"])
    cause = page.locator("#cause-0 h3")
    assert cause.is_visible() and cause.inner_text().startswith(
        "Cause: module only in unused_linear: blocks.0.attn.linear")
    first = page.locator("#sbs tbody.first")
    assert first.is_visible() and "first divergence" in first.inner_text()
    assert first.locator("tr.inserted").count() == 2  # the unused Linear's weight and bias
    first.locator("a", has_text="cause #0").click()
    assert page.evaluate("location.hash") == "#cause-0"
    page.click("#cause-0 a:has-text('draw 7 of original')")
    expect(page.locator("#draw-0-7.target-row")).to_be_visible()  # the tree opened there
    assert problems == []


def test_hostile_logs_run_nothing(chrome, pages):
    for name in ("hostile", "hostile-diff"):
        page, problems = _open(chrome, pages[name])
        # every module opened: every draw of the log drawn into a table
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        page.wait_for_timeout(200)
        for payload in PAYLOADS:
            page.fill('#filters input[name="module"]', payload)
            page.wait_for_timeout(200)
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert problems == []
        assert PAYLOADS[0] in page.inner_text("body")  # shown as text
        page.close()


def test_check_page_evidence_links_to_the_draws(chrome, pages):
    page, problems = _open(chrome, pages["check"])
    assert page.inner_text(".verdict") == "rngtrace check: seeded: 1 finding (1 error)"
    assert page.inner_text("#finding-0 h3").startswith("ERROR [repeated-stream]")
    page.locator("#finding-0 li a").first.click()
    expect(page.locator("tr.target-row")).to_have_count(1)
    assert problems == [], sys.stderr.write("\n".join(problems))
