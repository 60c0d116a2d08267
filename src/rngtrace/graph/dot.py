"""The DOT drawing behind :func:`rngtrace.graph.to_dot`: a module graph as Graphviz source.

:func:`render` takes the ``networkx.DiGraph`` that :func:`rngtrace.graph.to_networkx` or
:func:`rngtrace.graph.diff_graph` makes and returns Graphviz DOT source: modules nested in
clusters along the module tree, boxes filled by phase (logs) or by diff status (diffs),
one arrow colour per generator stream, and a legend. :class:`_View` decides what is shown
(modules folded to ``depth``, runs of identical numbered siblings collapsed). graphviz is
imported here only, when drawing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import RngtraceError
from ..logfile.format import MAX_DEPTH
from ..text import plural

if TYPE_CHECKING:
    import networkx as nx

    from ..diffing import HunkKind
    from ..log import Phase

OUTSIDE = "(outside)"  # the node of draws made outside any module


# Diff kinds, from least to most striking, with their fill and legend text.
STATUS: dict[HunkKind, tuple[str, str]] = {
    "equal": ("#f2f2f2", "same: the same draws at the same place in the stream"),
    "shifted": ("#ffe066", "shifted: the same draws, from a moved stream"),
    "changed": ("#ffa94d", "changed: other draws (op, shape or arguments)"),
    "removed": ("#ff8787", "removed: draws only in {a}"),
    "inserted": ("#8ce99a", "inserted: draws only in {b}"),
}
PHASE_FILL: dict[Phase, str] = {"init": "#d0ebff", "forward": "#ffdeeb", "backward": "#e5dbff",
              "other": "#e9ecef"}
TIMES = "\u00d7"
_SP = "&#160;"  # a space after </b> that SVG viewers keep
_GEN_COLORS = ("#343a40", "#1c7ed6", "#ae3ec9", "#0ca678", "#f76707", "#868e96")
_STATS = ("draws", "values", "phases", "generators", "ops", "status")


class _View:
    """What a picture shows: modules folded to ``depth``, identical siblings collapsed."""

    def __init__(self, g: nx.DiGraph, depth: int | None, collapse: bool) -> None:
        self.g = g
        self.parent = {v: u for u, v, k in g.edges(data="kind") if k == "child"}
        modules = [n for n, k in g.nodes(data="kind") if k in ("module", "outside")]
        self.visible = {n for n in modules if depth is None or g.nodes[n]["depth"] <= depth}
        self.agg: dict[str, dict[str, Any]] = {n: _zero() for n in self.visible}
        self.sub_first: dict[str, float] = {n: float("inf") for n in self.visible}
        for n in modules:
            a = g.nodes[n]
            v = self.shown(n)
            _merge(self.agg[v], a)
            while a["first"] is not None:  # the first draw of each subtree orders the picture
                self.sub_first[v] = min(self.sub_first[v], a["first"])
                if v not in self.parent:
                    break
                v = self.parent[v]
        self.children: dict[str, list[str]] = {n: [] for n in self.visible}
        for n in sorted(self.visible, key=self.sort_key):
            if n in self.parent:
                self.children[self.parent[n]].append(n)
        self.by_name = {(self.parent.get(n), g.nodes[n]["name"]): n for n in self.visible}
        self.rep: dict[str, str] = {}  # collapsed sibling -> the first of its run
        self.runs: dict[str, list[str]] = {}  # first of a run -> the run
        self._sigs: dict[str, Any] = {}
        self._boxes: dict[str, str] = {}
        self.back_edges = False  # set while drawing: some stream arrow goes back
        if collapse:
            for root in sorted((n for n in self.visible if n not in self.parent),
                               key=self.sort_key):
                self._collapse(root)

    def sort_key(self, n: str) -> tuple[float, str]:
        return (self.sub_first.get(n, float("inf")), n)

    def shown(self, n: str) -> str:
        while n not in self.visible:
            n = self.parent[n]
        return n

    def signature(self, n: str) -> Any:
        if n not in self._sigs:
            a, s = self.g.nodes[n], self.agg[n]
            self._sigs[n] = (a["type"], s["draws"], s["values"],
                             *(tuple(sorted(s[k].items())) for k in _STATS[2:]),
                             tuple((self.g.nodes[c]["name"], self.signature(c))
                                   for c in self.children[n]))
        return self._sigs[n]

    def _collapse(self, n: str) -> None:
        numbered = sorted((c for c in self.children[n] if self.g.nodes[c]["name"].isdecimal()),
                          key=lambda c: int(self.g.nodes[c]["name"]))
        run: list[str] = []
        for c in [*numbered, None]:
            if (c is not None and run
                    and int(self.g.nodes[c]["name"]) == int(self.g.nodes[run[-1]]["name"]) + 1
                    and self.signature(c) == self.signature(run[0])):
                run.append(c)
                continue
            if len(run) > 1:
                self.runs[run[0]] = run
                self.rep.update((m, run[0]) for m in run[1:])
            run = [c] if c is not None else []
        for c in self.children[n]:
            if c not in self.rep:
                self._collapse(c)

    def box(self, n: str) -> str:
        """The module shown for node ``n``: its shown ancestor, mapped into the first
        of a collapsed run (``h.7.attn`` -> ``h.0.attn``)."""
        if n in self._boxes:
            return self._boxes[n]
        chain = [self.shown(n)]
        while chain[-1] in self.parent:
            chain.append(self.parent[chain[-1]])
        cur = chain.pop()
        while chain:
            cur = self.by_name[(cur, self.g.nodes[chain.pop()]["name"])]
            cur = self.rep.get(cur, cur)
        self._boxes[n] = cur
        return cur


def _zero() -> dict[str, Any]:
    return {"draws": 0, "values": 0, "phases": {}, "generators": {}, "ops": {}, "status": {}}


def _merge(into: dict[str, Any], a: dict[str, Any]) -> None:
    into["draws"] += a["draws"]
    into["values"] += a["values"]
    for k in _STATS[2:]:
        for key, n in a.get(k, {}).items():
            into[k][key] = into[k].get(key, 0) + n


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def _name(view: _View, n: str) -> str:
    """A module's name in its cluster: ``attn``; a collapsed run: ``h.0 … h.11``."""
    a = view.g.nodes[n]
    up = view.g.nodes[view.parent[n]] if n in view.parent else None
    # numbered children say whose: "blocks.0", "mlp.2" (not below the root: "0", "1")
    pre = f"{up['name']}." if up is not None and up["depth"] and a["name"].isdecimal() else ""
    if n not in view.runs:
        return pre + a["name"]
    first, last = (view.g.nodes[m]["name"] for m in (view.runs[n][0], view.runs[n][-1]))
    return f"{pre}{first} … {pre}{last}"


def _label(view: _View, n: str, own: bool, marked: bool, diff: bool) -> str:
    a, s = view.g.nodes[n], view.agg[n]
    rows = ['<font color="#c92a2a"><b>▶ first divergence</b></font>'] if marked else []
    if own:
        rows.append(f"<b>{_esc(_name(view, n))}</b>")
        short = [t.rsplit(".", 1)[-1] for t in a["targets"][:3]]
        more = " …" if len(a["targets"]) > 3 else ""
        rows.append(_esc(f"own draws: {', '.join(short)}{more}" if short else "own draws"))
    else:
        head = f"<b>{_esc(_name(view, n))}</b>"
        if a["type"]:
            head += f'{_SP}<font color="#495057">{_esc(a["type"])}</font>'
        rows.append(head)
        if n in view.runs:
            rows.append(f"<i>{TIMES}{len(view.runs[n])} identical, counts are per module</i>")
    rows.append(f"{plural(s['draws'], 'draw')} · {plural(s['values'], 'value')}")
    if set(s["phases"]) != {"init"}:
        rows.append(_esc(" · ".join(f"{p} {c}" for p, c in _phase_order(s["phases"]))))
    if set(s["generators"]) != {"default:cpu"}:
        rows.append(_esc(" · ".join(f"{k} {c}" for k, c in sorted(s["generators"].items()))))
    if diff and s["status"]:
        rows.append(" · ".join(f"{c} {'same' if k == 'equal' else k}"
                               for k, c in _by_status(s["status"])))
    return "<" + "<br/>".join(rows) + ">"


def _cluster_label(view: _View, n: str) -> str:
    a = view.g.nodes[n]
    text = f"<b>{_esc(_name(view, n))}</b>"
    if a["type"] and a["type"] != a["name"]:
        text += f"{_SP}{_esc(a['type'])}"
    if n in view.runs:
        text += f"{_SP}<i>{TIMES}{len(view.runs[n])} identical, counts are per module</i>"
    return f"<{text}>"


def _phase_order(phases: dict[Phase, int]) -> list[tuple[Phase, int]]:
    known = list(PHASE_FILL)
    return sorted(phases.items(), key=lambda kv: (known.index(kv[0]) if kv[0] in known
                                                  else len(known), kv[0]))


def _by_status(status: dict[HunkKind, int]) -> list[tuple[HunkKind, int]]:
    return [(k, status[k]) for k in reversed(STATUS) if status.get(k)]


def _fill(s: dict[str, Any], diff: bool) -> dict[str, str]:
    """Fill by diff status (diffs) or by phase (logs); mixed boxes are striped."""
    if diff:
        parts = [(STATUS[k][0], c) for k, c in _by_status(s["status"])] or [(STATUS["equal"][0], 1)]
    else:
        parts = [(PHASE_FILL.get(p, "white"), c) for p, c in _phase_order(s["phases"])]
        parts = parts or [("white", 1)]
    if len(parts) == 1:
        return {"style": "filled", "fillcolor": parts[0][0]}
    total = sum(c for _, c in parts)
    return {"style": "striped", "fillcolor": ":".join(f"{f};{c / total:.3f}" for f, c in parts)}


def render(g: nx.DiGraph, depth: int | None, collapse: bool) -> str:
    """DOT source for a graph made by :func:`~rngtrace.graph.to_networkx` or
    :func:`~rngtrace.graph.diff_graph`; ``depth`` and ``collapse`` as in
    :func:`rngtrace.graph.to_dot`."""
    import graphviz

    if depth is not None and depth < 0:
        raise RngtraceError(f"depth must be 0 or more, not {depth}")
    # clusters nest one level per module level: a loaded log is at most MAX_DEPTH deep,
    # a log made in Python may be deeper, and is folded there
    depth = MAX_DEPTH if depth is None else min(depth, MAX_DEPTH)
    view = _View(g, depth, collapse)
    diff = g.graph["kind"] == "diff"
    first_div = g.graph.get("first_divergence")
    marked = view.box(first_div) if first_div is not None else None
    shown = sorted((n for n in view.visible if n not in view.rep
                    and not any(a in view.rep for a in _ancestors(view, n))),
                   key=view.sort_key)
    ids = {n: f"n{i}" for i, n in enumerate(shown)}
    dot = graphviz.Digraph("rngtrace", graph_attr={
        "rankdir": "TB", "fontname": "Helvetica", "fontsize": "12", "labelloc": "t",
        "label": "<" + "<br/>".join(_esc(t) for t in (g.graph.get("title") or _title(view))
                                    .splitlines()) + ">", "nodesep": "0.25",
        "ranksep": "0.3", "newrank": "true"},
        node_attr={"shape": "box", "fontname": "Helvetica", "fontsize": "10",
                   "margin": "0.08,0.04"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "arrowsize": "0.6"})

    def emit(parent: graphviz.Digraph, n: str) -> None:
        kids = [c for c in view.children[n] if c not in view.rep]
        node = _fill(view.agg[n], diff)
        if n == marked:
            node.update(penwidth="3", color="#c92a2a")
        if view.g.nodes[n]["kind"] == "outside":
            node["style"] += ",dashed"
        if not kids:
            parent.node(ids[n], _label(view, n, False, n == marked, diff), **node)
            return
        with parent.subgraph(name=f"cluster_{ids[n]}") as sub:
            sub.attr(label=_cluster_label(view, n), style="rounded", color="#adb5bd",
                     fontsize="10", labeljust="l")
            if view.agg[n]["draws"]:
                sub.node(ids[n], _label(view, n, True, n == marked, diff), **node)
            for c in kids:
                emit(sub, c)

    for n in shown:
        if n not in view.parent:
            emit(dot, n)
    gens = _stream_edges(dot, view, ids)
    phases = [p for a in view.agg.values() for p in a["phases"]]
    labels = g.graph.get("labels") if diff else None
    dot.node("legend", _legend(gens, phases, labels, marked is not None, view.back_edges),
             shape="plaintext")
    return dot.source


def _ancestors(view: _View, n: str) -> list[str]:
    out = []
    while n in view.parent:
        n = view.parent[n]
        out.append(n)
    return out


def _title(view: _View) -> str:
    roots = [view.g.nodes[n] for n in view.g.graph["roots"] if n != OUTSIDE]
    total = _zero()
    for a in view.agg.values():
        _merge(total, a)
    names = ", ".join(a["name"] for a in roots) or "no modules"
    return (f"rngtrace: {names}: {plural(total['draws'], 'draw')}, "
            f"{plural(total['values'], 'value')}")


def _stream_edges(dot: Any, view: _View, ids: dict[str, str]) -> dict[str, str]:
    """Arrows from each consumer to the next, one colour per generator; an arrow back
    to a box already reached does not push the layout down (``constraint=false``)."""
    colors: dict[str, str] = {}
    streams = view.g.graph.get("streams", {})
    for gen, seq in sorted(streams.items(), key=lambda kv: kv[0] != "default:cpu"):
        boxes: list[str] = []
        for n in seq:
            b = view.box(n)
            if not boxes or boxes[-1] != b:
                boxes.append(b)
        if len(boxes) < 2:
            continue
        color = colors[gen] = _GEN_COLORS[min(len(colors), len(_GEN_COLORS) - 1)]
        seen: dict[str, int] = {}
        counts: dict[tuple[str, str], int] = {}
        for pos, b in enumerate(boxes):
            seen.setdefault(b, pos)
            if pos:
                counts[(boxes[pos - 1], b)] = counts.get((boxes[pos - 1], b), 0) + 1
        for (u, v), c in counts.items():
            attrs = {"color": color}
            if c > 1:
                attrs.update(label=f"{TIMES}{c}", fontcolor=color)
            if seen[v] <= seen[u]:
                attrs.update(constraint="false", style="dashed")
                view.back_edges = True
            dot.edge(ids[u], ids[v], **attrs)
    return colors


def _legend(gens: dict[str, str], phases: list[Phase], labels: tuple[str, str] | None,
            marked: bool, back: bool) -> str:
    def row(cell: str, text: str) -> str:
        # trailing spaces leave room for viewers whose fonts run wider than Graphviz's
        return f'<tr>{cell}<td align="left">{text}{_SP * 3}</td></tr>'

    rows = []
    if labels is not None:
        a, b = (_esc(x) for x in labels)
        rows += [row(f'<td bgcolor="{fill}" width="24"></td>', _esc(text).format(a=a, b=b))
                 for fill, text in STATUS.values()]
        if marked:
            rows.append(row('<td border="3" color="#c92a2a"></td>',
                            "first divergence: the streams part here"))
    else:
        rows += [row(f'<td bgcolor="{PHASE_FILL.get(p, "white")}" width="24"></td>',
                     _esc(f"draws in phase {p}"))
                 for p, _ in _phase_order(dict.fromkeys(phases, 0))]
    rows += [row(f'<td><font color="{color}"><b>→</b></font></td>',
                 f"next module to draw from {_esc(gen)}") for gen, color in gens.items()]
    if back:
        rows.append(row("<td>- - →</td>", f"dashed: back to a module that drew before; "
                                          f"{TIMES}N: taken N times"))
    rows.append('<tr><td colspan="2" align="left"><i>modules that drew nothing are '
                'not shown</i></td></tr>')
    return ('<<table border="0" cellborder="1" cellspacing="2" cellpadding="3">'
            + "".join(rows) + "</table>>")
