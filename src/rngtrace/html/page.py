"""The frame every page shares: one self-contained HTML file, its style and script
inline, a Content-Security-Policy that lets only that script and style run and nothing
be fetched, the data in a ``<script type="application/json">``, and the pieces several
pages show (the filter bar, the module trees, the picture).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from .._version import __version__
from ..errors import GraphvizNotFound, RngtraceError
from ..log import Log
from .escape import esc, json_data
from .table import MAX_ROWS, Strings, chosen, draw_table
from .tree import Tree, render

#: The first line of every page (how rngtrace knows a file it may write over).
FIRST_LINE = "<!DOCTYPE html><!-- rngtrace report -->"
PICTURE_NODES = 400  # modules a picture draws; deeper ones are counted in an ancestor
PICTURE_SECONDS = 60.0  # the longest Graphviz may take to draw a page's picture


@cache
def static(name: str) -> str:
    """A file of ``rngtrace/html/static`` (the page's style and script)."""
    return resources.files(__package__).joinpath("static").joinpath(name).read_text("utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page(title: str, body: str, data: dict[str, Any] | None = None) -> str:
    """A whole page: ``body`` (HTML already escaped) and ``data`` for its script."""
    css, js = static("report.css"), static("report.js")
    policy = (f"default-src 'none'; img-src data:; style-src {_hash(css)}; "
              f"script-src {_hash(js)}; base-uri 'none'; form-action 'none'")
    payload = json_data(data if data is not None else {"strings": [], "logs": []})
    return (f"{FIRST_LINE}\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"rngtrace {esc(__version__)}\">\n"
            f"<title>{esc(title)}</title>\n<style>{css}</style></head>\n<body>\n{body}\n"
            f"<script type=\"application/json\" id=\"rngtrace-data\">{payload}</script>\n"
            f"<script>{js}</script>\n</body></html>\n")


def section(title: str, inner: str, ident: str, *, folded: bool = False) -> str:
    """A titled part of the page; ``folded``: closed until clicked."""
    if folded:
        return (f'<section id="{ident}"><details><summary><h2>{esc(title)}</h2></summary>'
                f"{inner}</details></section>")
    return f'<section id="{ident}"><h2>{esc(title)}</h2>{inner}</section>'


class Logs:
    """The logs a page shows: one table each in the page's data, one tree each."""

    def __init__(self) -> None:
        self.strings = Strings()
        self.tables: list[dict[str, Any]] = []
        self.trees: list[Tree] = []
        self.phases: dict[str, None] = {}
        self.generators: dict[str, None] = {}
        self.left_out = 0

    def add(self, log: Log, label: str, keep: Sequence[int] = ()) -> int:
        """Add a log; returns its number in the page."""
        tree = Tree(log)
        rows = chosen(log, tree.node_of, keep=set(keep))
        self.left_out += len(log.draws) - len(rows)
        self.tables.append(draw_table(log, label, self.strings, tree.node_of, rows))
        self.trees.append(tree)
        for root in tree.roots:
            self.phases.update(dict.fromkeys(root.phases))
            self.generators.update(dict.fromkeys(root.generators))
        return len(self.tables) - 1

    def data(self, **more: Any) -> dict[str, Any]:
        return {"strings": self.strings.items, "logs": self.tables, **more}

    def tree(self, n: int) -> str:
        if not self.tables[n]["n"]:
            return '<p class="note">No draws.</p>'
        return f'<div class="tree">{render(self.trees[n], n)}</div>'

    def filters(self) -> str:
        """The filter bar: module (or target), op, phase, generator."""
        def options(values: Sequence[str]) -> str:
            return '<option value="">any</option>' + "".join(
                f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)

        note = ("" if not self.left_out else
                f'<span class="note">{self.left_out:,} draws are not in the page (it holds '
                f"the first of each module past {MAX_ROWS:,}): rngtrace show --json has "
                "them</span>")
        return ('<div id="filters" role="search"><strong>Filter</strong>'
                '<label>module <input name="module" type="search" '
                'placeholder="blocks.0 or *.attn.*" aria-label="module or parameter"></label>'
                '<label>op <input name="op" type="search" placeholder="bernoulli" '
                'aria-label="op"></label>'
                f'<label>phase <select name="phase">{options(list(self.phases))}</select></label>'
                f'<label>generator <select name="gen">{options(list(self.generators))}'
                f'</select></label><span id="filter-count" aria-live="polite"></span>{note}'
                "</div>")


def picture(obj: Any, modules: int) -> str:
    """The picture of a log, diff or ranks report (SVG, drawn by Graphviz), in a
    scrollable, zoomable box; or why there is none. Pictures of more than
    :data:`PICTURE_NODES` modules are drawn to the depth that keeps them under it."""
    from ..graph import to_dot

    depth = None if modules <= PICTURE_NODES else _depth(obj)
    try:
        svg = to_dot(obj, depth).svg(timeout=PICTURE_SECONDS)
    except GraphvizNotFound as e:
        return (f'<p class="note">No picture: {esc(e)}. <code>rngtrace dot</code> writes '
                "the DOT source without it.</p>")
    except RngtraceError as e:
        return f'<p class="note">No picture: {esc(e)}.</p>'
    at = svg.find("<svg")
    data = base64.b64encode(svg[max(at, 0):].encode("utf-8")).decode("ascii")
    cut = "" if depth is None else (
        f'<p class="note">Modules deeper than {depth} levels are counted in their '
        f"ancestors (<code>rngtrace dot --depth N</code> draws others).</p>")
    # an <img>: a picture shown as an image runs no script, whatever its text holds
    return (f'{cut}<p class="zoom"><button type="button" data-zoom="fit">fit</button>'
            '<button type="button" data-zoom="1">100%</button>'
            '<button type="button" data-zoom="in">zoom in</button>'
            '<button type="button" data-zoom="out">zoom out</button></p>'
            f'<div class="picture fit"><img alt="the picture of the modules and their '
            f'streams" src="data:image/svg+xml;base64,{data}"></div>')


def _depth(obj: Any) -> int | None:
    """The deepest module level at which a picture keeps to :data:`PICTURE_NODES`."""
    logs = [obj] if isinstance(obj, Log) else [x for x in (getattr(obj, "a", None),
                                                           getattr(obj, "b", None)) if x]
    per_depth: dict[int, int] = {}
    for log in logs:
        for s in log.module_stats():
            if s.module:
                per_depth[s.module.count(".") + 1] = per_depth.get(
                    s.module.count(".") + 1, 0) + 1
    total, depth = 0, 0
    for level in sorted(per_depth):
        total += per_depth[level]
        if total > PICTURE_NODES:
            break
        depth = level
    return depth


def meta_lines(log: Log) -> list[str]:
    """Where and how a log was recorded, from its header (as ``rngtrace show`` says)."""
    meta = log.meta
    out = []
    made = ", ".join(f"{name} {meta[k]}" for k, name in (
        ("rngtrace", "rngtrace"), ("torch", "torch"), ("python", "Python")) if k in meta)
    if "time" in meta:
        out.append(f"recorded {meta['time']}")
    if made:
        out.append(f"with {made}" + (f" on {meta['platform']}" if "platform" in meta else ""))
    argv = meta.get("argv")
    if isinstance(argv, list) and argv:
        out.append("command: " + " ".join(str(a) for a in argv))
    dist = meta.get("dist")
    if isinstance(dist, dict) and "rank" in dist:
        out.append(f"rank {dist['rank']} of {dist.get('world_size', '?')}")
    return out
