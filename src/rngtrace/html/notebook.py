"""What a Jupyter notebook shows for a :class:`~rngtrace.Log`, a ``Diff``, a
``RankReport`` or a ``CheckReport`` (their ``_repr_html_``): a bounded fragment without
script, which opens and closes with ``<details>`` alone and styles only itself, so that
it shows the same in a trusted or an untrusted notebook, and in a rendered one.
"""

from __future__ import annotations

from typing import Any

from ..checking import CheckReport
from ..diffing import Diff, ResumeDiff
from ..log import Draw, Log
from ..ranks import RankReport
from ..summary import headline
from .diffpage import _cause
from .escape import esc
from .findings import cards
from .table import args_text, shape_text
from .tree import Node, Tree, render

OWN = 10  # draws listed per module
_GRID = "display:grid;grid-template-columns:1em minmax(12em,1fr) 8em 6em 7em 12em 10em;gap:.5em"
STYLE = (f"<style>.rngtrace-nb .mod>summary{{{_GRID};list-style:none;cursor:pointer}}"
         ".rngtrace-nb .mod>summary::before{content:'\\25b8'}"
         ".rngtrace-nb .mod[open]>summary::before{content:'\\25be'}"
         ".rngtrace-nb .mod .mod{margin-left:1em}"
         f".rngtrace-nb .num{{text-align:right}}.rngtrace-nb .treehead{{{_GRID};"
         "font-weight:bold}.rngtrace-nb .card{border:1px solid #ccc;"
         "padding:.3em .6em;margin:.4em 0}.rngtrace-nb .mono{font-family:monospace}"
         ".rngtrace-nb table{font-size:12px;font-family:monospace}.rngtrace-nb pre"
         "{max-height:30em;overflow:auto}.rngtrace-nb .tree{max-height:40em;overflow:auto}"
         "</style>")


def notebook_html(obj: Any) -> str:
    """The fragment a notebook shows for ``obj``."""
    if isinstance(obj, Log):
        body = _log(obj)
    elif isinstance(obj, Diff):
        body = _diff(obj)
    elif isinstance(obj, CheckReport):
        body = f"<p><strong>{esc(obj.headline())}</strong></p>{cards(obj)}"
    elif isinstance(obj, (RankReport, ResumeDiff)):
        text = str(obj) if isinstance(obj, RankReport) else obj.report()
        body = f"<pre>{esc(text)}</pre>"
    else:
        body = f"<pre>{esc(obj)}</pre>"
    return f'<div class="rngtrace-nb">{STYLE}{body}</div>'


def _log(log: Log) -> str:
    tree = Tree(log)
    own: dict[int, list[Draw]] = {}
    for d in log.draws:
        listed = own.setdefault(tree.node_of(d), [])
        if len(listed) < OWN:
            listed.append(d)

    def table(n: Node) -> str:
        rows = "".join(
            f"<tr><td>{d.index}</td><td>{esc(d.op.removeprefix('aten::'))}</td>"
            f"<td>{esc(d.target or '')}</td><td>{esc(shape_text(d.shape))}</td>"
            f"<td>{esc(args_text(d.args))}</td><td>{esc(d.phase)}</td><td>{d.step}</td>"
            f"<td>{esc(d.generator)}</td><td>{esc(d.site or '')}</td></tr>"
            for d in own.get(n.id, []))
        more = (f"<tr><td colspan=9>... {n.draws - OWN:,} more (rngtrace.to_html)</td></tr>"
                if n.draws > OWN else "")
        return f"<table>{rows}{more}</table>"

    tree_html = render(tree, 0, own=table) if log.draws else ""
    return (f"<p><strong>{esc(headline(log))}</strong></p>"
            f'<div class="tree">{tree_html}</div>')


def _diff(d: Diff) -> str:
    text = d.report(width=100)
    head = text.splitlines()[0] if text else ""
    causes = "".join(_cause(d, c, n) for n, c in enumerate(d.causes[:10]))
    return (f"<p><strong>{esc(head)}</strong></p>{causes}"
            f"<details><summary>the text report</summary><pre>{esc(text)}</pre></details>")
