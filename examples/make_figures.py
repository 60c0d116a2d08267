"""Build the pictures the README shows, from the story's example (``make figures``).

docs/story_diff.svg: TinyViT "original" against "unused_linear" (one unused
``nn.Linear`` per attention block), each built and trained for two steps under
``rngtrace.record()`` from ``torch.manual_seed(0)``; the picture of their diff.
Needs Graphviz's ``dot`` program.

docs/html_diff.png and docs/html_show.png: the top of the HTML pages of that diff and
of the original's log (``rngtrace diff/show --html``), with a module opened, as headless
Chromium shows them (examples/browser.py; needs Chromium and Playwright).

    python examples/make_figures.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys
import tempfile

import story_models
import torch

import rngtrace
from rngtrace.graph import save

HERE = os.path.dirname(os.path.abspath(__file__))


def record(variant: str, steps: int = 2) -> rngtrace.Log:
    torch.manual_seed(0)
    with rngtrace.record() as log:
        story_models.train(story_models.TinyViT(variant=variant), steps)
    return log


def screenshots(out_dir: str, log: rngtrace.Log, diff: rngtrace.Diff) -> None:
    """The HTML report, as a browser shows it (pages written to a temporary folder)."""
    from browser import chromium, screenshot

    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        show = rngtrace.html.save(log, os.path.join(tmp, "show.html"),
                                  label="original.rngtrace.jsonl")
        screenshot(browser, show, os.path.join(out_dir, "html_show.png"), clicks=tuple(
            f'details.mod[data-path="{p}"] > summary'
            for p in ("blocks", "blocks.0", "blocks.0.attn", "blocks.0.attn.qkv")))
        page = rngtrace.html.save(diff, os.path.join(tmp, "diff.html"))
        screenshot(browser, page, os.path.join(out_dir, "html_diff.png"))
    print(f"wrote {out_dir}/html_show.png, {out_dir}/html_diff.png")


def main(out_dir: str) -> int:
    os.makedirs(out_dir, exist_ok=True)
    original = record("original")
    diff = rngtrace.diff(original, record("unused_linear"),
                         labels=("original", "unused_linear"))
    try:
        path = save(diff, os.path.join(out_dir, "story_diff.svg"))
        print(f"wrote {path}")
        screenshots(out_dir, original, diff)
    except (rngtrace.RngtraceError, RuntimeError) as e:
        print(f"make_figures: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "docs")))
