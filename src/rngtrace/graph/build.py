"""Pictures of RNG consumption as networkx graphs: a log's modules and streams, a diff's."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import GraphvizNotFound, RngtraceError
from ..log import Draw, Log
from ..logfile.files import check_target, write_replacing
from ..ranks import RankReport
from ..text import module_label
from .dot import OUTSIDE, render
from .picture import INSTALL_HINT, DotSource

if TYPE_CHECKING:
    import networkx as nx

    from ..diffing import Diff

FORMATS = ("dot", "gv", "svg", "png", "pdf")


# -- the graph ---------------------------------------------------------------------

def node_key(model: str | None, path: str | None, several: bool) -> str:
    """The node of module ``path`` of ``model``: its state_dict path (``""`` for the root);
    with several models, ``"Net#2:enc.0"`` and ``"Net#2"`` for that model's root."""
    if path is None:
        return OUTSIDE
    if not several:
        return path
    return f"{model}:{path}" if path else str(model)


def _several(draws: Iterable[Draw]) -> bool:
    return len({d.model for d in draws if d.module is not None}) > 1


def _module_node(g: nx.DiGraph, model: str | None, path: str | None, several: bool,
                 mtype: str | None = None) -> str:
    """Add the node of a module and its ancestors (with child edges); returns its key.

    Iterative, and it stops at the first ancestor already in the graph; a path of D
    parts still makes D keys, each a prefix of the path (the loader refuses paths
    deeper than ``MAX_DEPTH``, which bounds that)."""
    key = node_key(model, path, several)
    if key in g:
        if mtype and not g.nodes[key]["type"]:
            g.nodes[key]["type"] = mtype
        return key
    if path is None:
        g.add_node(key, kind="outside", model=None, path=None, name="outside modules",
                   type=None, depth=0, **_empty())
        return key
    root_type = model.split("#")[0] if model else None
    depth = path.count(".") + 1 if path else 0
    # (parent, child), deepest first; added root first, as the recursion did
    edges: list[tuple[str, str]] = []
    while True:
        k = node_key(model, path, several)
        if edges and k in g:
            break
        name = path.rpartition(".")[2] if path else (model or "(root)")
        g.add_node(k, kind="module", model=model, path=path, name=name,
                   type=mtype or (None if depth else root_type), depth=depth, **_empty())
        if not depth:
            break
        mtype, depth = None, depth - 1
        path = path.rpartition(".")[0] if depth else ""
        edges.append((node_key(model, path, several), k))
    g.add_edges_from(reversed(edges), kind="child")
    return key


def _empty() -> dict[str, Any]:
    return {"draws": 0, "values": 0, "phases": {}, "generators": {}, "ops": {},
            "targets": [], "first": None, "order": {}}


def _count(node: dict[str, Any], d: Draw) -> None:
    node["draws"] += 1
    node["values"] += d.numel if d.consumed else 0
    for field, k in (("phases", d.phase), ("generators", d.generator), ("ops", d.op)):
        node[field][k] = node[field].get(k, 0) + 1
    if d.target is not None and d.target not in node["targets"]:
        node["targets"].append(d.target)
    if node["first"] is None:
        node["first"] = d.index


def _add_streams(g: nx.DiGraph, sequence: Iterable[tuple[str, str]]) -> None:
    """Stream order from (generator, node) pairs in draw order: runs collapsed into
    ``g.graph["streams"]``, each node's positions in ``order`` and ``next`` edges."""
    streams: dict[str, list[str]] = g.graph.setdefault("streams", {})
    for gen, key in sequence:
        seq = streams.setdefault(gen, [])
        if seq and seq[-1] == key:
            continue
        seq.append(key)
        g.nodes[key]["order"].setdefault(gen, []).append(len(seq) - 1)
        if len(seq) < 2:
            continue
        u = seq[-2]
        if not g.has_edge(u, key):
            g.add_edge(u, key, kind="next", generator=gen, order=len(seq) - 1, next=[])
        g.edges[u, key].setdefault("next", []).append((gen, len(seq) - 1))


def to_networkx(log: Log, draws: bool = False) -> nx.DiGraph:
    """The log as a directed graph of modules: the module tree and the stream order.

    Nodes are modules keyed by state_dict path (``""`` is the root, labelled with its
    class in ``name``/``type``; with several models see :func:`node_key`), their
    ancestors (even those that drew nothing) and :data:`OUTSIDE` for draws made outside
    modules. Node attributes: ``kind`` ("module"/"outside"), ``model``, ``path``,
    ``name``, ``type``, ``depth``, and the module's own consumption: ``draws``,
    ``values``, ``phases``/``generators``/``ops`` (draws per phase, generator, op),
    ``targets``, ``first`` (index of its first draw) and ``order`` ({generator:
    positions in that generator's stream}).

    Edges: ``kind="child"`` from a module to each child; ``kind="next"`` from each
    consumer of a generator to the next one (``generator``, ``order``: the position of
    the edge's head in ``g.graph["streams"][generator]``, the list of consecutive
    consumers). A step of the stream that coincides with a tree edge keeps
    ``kind="child"``; every edge that is a stream step lists all of them as
    (generator, order) pairs in ``next``.

    With ``draws=True`` (for small logs) each draw is also a node, keyed by its index
    (``kind="draw"`` plus its fields), with an edge ``kind="drew"`` from its module and
    ``kind="next_draw"`` edges along each generator's stream.

    >>> import torch, rngtrace
    >>> with rngtrace.record() as log:
    ...     net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> g = to_networkx(log)
    >>> sorted(g.edges(data="kind"))
    [('', '0', 'child')]
    """
    import networkx as nx

    g = nx.DiGraph(kind="log", streams={}, roots=[])
    several = _several(log.draws)
    keys = []
    for d in log.draws:
        key = _module_node(g, d.model, d.module, several, d.module_type)
        _count(g.nodes[key], d)
        keys.append(key)
    g.graph["roots"] = [n for n, a in g.nodes(data=True) if a["depth"] == 0]
    _add_streams(g, ((d.generator, k) for d, k in zip(log.draws, keys, strict=True)
                     if d.consumed))
    if draws:
        last: dict[str, int] = {}
        for d, key in zip(log.draws, keys, strict=True):
            g.add_node(d.index, kind="draw", index=d.index, op=d.op, target=d.target,
                       phase=d.phase, step=d.step, generator=d.generator, numel=d.numel,
                       shape=d.shape, consumed=d.consumed)
            g.add_edge(key, d.index, kind="drew")
            if d.consumed:
                if d.generator in last:
                    g.add_edge(last[d.generator], d.index, kind="next_draw",
                               generator=d.generator)
                last[d.generator] = d.index
    return g


# -- DOT --------------------------------------------------------------------------

def to_dot(obj: Log | Diff | RankReport, depth: int | None = None, *,
           collapse: bool = True) -> DotSource:
    """DOT source (Graphviz) picturing a :class:`~rngtrace.Log`, a ``Diff`` or a
    ``RankReport`` (the ranks side by side: :func:`rngtrace.graph.ranks.ranks_dot`).

    A log's picture nests modules in clusters that follow the module tree; each module
    that drew is a box with its name, type, draws and values, and arrows (one colour
    per generator) follow each stream from consumer to consumer, so the boxes fall in
    the order they drew. A diff's picture colours each box by what happened to its
    draws (same, shifted, changed, inserted, removed; mixed boxes are striped), marks
    the first divergence and has a legend: everything after the marked box that is
    yellow drew the same thing as before, but from a moved stream.

    ``depth`` limits how far below each model modules are shown (0: the model only);
    deeper draws are counted in their shown ancestor. With ``collapse`` (default),
    runs of numbered siblings with the same draws (``h.0 … h.11``) are drawn once.
    Only modules that drew, and their ancestors, appear.

    The source is a :class:`~rngtrace.graph.picture.DotSource`: a ``str`` whose
    ``svg()`` draws it with Graphviz, and which a Jupyter notebook shows as the picture.

    >>> import torch, rngtrace
    >>> with rngtrace.record() as log:
    ...     net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> print(rngtrace.to_dot(log).splitlines()[0])
    digraph rngtrace {
    """
    if isinstance(obj, Log):
        return DotSource(render(to_networkx(obj), depth, collapse))
    if isinstance(obj, RankReport):  # the ranks of a job side by side
        from .ranks import ranks_dot

        return DotSource(ranks_dot(obj))
    if hasattr(obj, "hunks"):
        return DotSource(render(diff_graph(obj), depth, collapse))
    raise RngtraceError(f"to_dot() takes a Log or a Diff (or a RankReport), not "
                        f"{type(obj).__name__}")


def save(obj: Log | Diff | RankReport, path: str | os.PathLike[str],
         depth: int | None = None, *, collapse: bool = True) -> str:
    """Write the picture of a log or diff to ``path``; returns the path written.

    The format follows the extension: ``.dot``/``.gv`` write DOT source; ``.svg``,
    ``.png`` and ``.pdf`` need Graphviz's ``dot`` program. Without it the DOT source is
    written next to ``path`` (``out.svg`` -> ``out.dot``) and :class:`GraphvizNotFound`
    is raised, saying so and how to install Graphviz. ``depth`` and ``collapse`` are
    those of :func:`to_dot`.

    Files are replaced atomically, and only files of the same kind: a DOT file only if
    rngtrace drew it (its first line is ``digraph rngtrace {``), a picture only if it is
    one of that format; an rngtrace log, a hand-written DOT file or anything else is
    refused with :class:`~rngtrace.RngtraceError` and left as it was.
    """
    import graphviz

    path = os.fspath(path)
    stem, ext = os.path.splitext(path)
    fmt = ext[1:].lower()
    if fmt not in FORMATS:
        raise RngtraceError(f"cannot write {path!r}: the extension must be one of "
                            + ", ".join("." + f for f in FORMATS))
    check_target(path, "the picture", _SNIFF[fmt], kind=_KIND[fmt])
    source = to_dot(obj, depth, collapse=collapse)
    try:
        if fmt in ("dot", "gv"):
            write_replacing(path, source.encode("utf-8"))
            return path
        data = graphviz.Source(source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFound(f"Graphviz's 'dot' program was not found, so {path} was not "
                               f"written; {_fallback(stem + '.dot', source)}: "
                               f"{INSTALL_HINT}") from None
    except OSError as e:
        raise RngtraceError(f"cannot write {path}: {e.strerror or e}") from None
    except graphviz.CalledProcessError as e:
        raise RngtraceError(f"Graphviz failed on {path}: {e}") from None
    try:
        write_replacing(path, data)
    except OSError as e:
        raise RngtraceError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _is_our_dot(head: bytes) -> bool:
    """``digraph rngtrace {`` (a log, a diff) or ``digraph rngtrace_ranks {``."""
    return head.rstrip() in (b"digraph rngtrace {", b"digraph rngtrace_ranks {")


_SNIFF = {"dot": _is_our_dot, "gv": _is_our_dot,
          "svg": lambda h: h.lstrip().startswith((b"<?xml", b"<svg", b"<!DOCTYPE svg")),
          "png": lambda h: h.startswith(b"\x89PNG"), "pdf": lambda h: h.startswith(b"%PDF")}


_KIND = {"dot": "a DOT file written by rngtrace", "gv": "a DOT file written by rngtrace",
         "svg": "an SVG file", "png": "a PNG file", "pdf": "a PDF file"}


def _fallback(path: str, source: str) -> str:
    """Write the DOT source beside a picture that could not be rendered; say what was done."""
    try:
        check_target(path, "the DOT source", _is_our_dot, kind=_KIND["dot"])
    except RngtraceError:
        return f"{path} exists and was not written by rngtrace, so nothing was written"
    replacing = " (replacing the one there)" if os.path.exists(path) else ""
    try:
        write_replacing(path, source.encode("utf-8"))
    except OSError as e:
        return f"nor {path}: {e.strerror or e}"
    return f"wrote {path} instead{replacing}"


def diff_graph(diff: Diff) -> nx.DiGraph:
    """A :class:`~rngtrace.diffing.Diff` as the graph :func:`to_networkx` makes of a log.

    Modules of both runs (keys as in :func:`node_key`), counted from B's draws, A's for
    removed draws; each node also has ``status``: {hunk kind: draws}. A pair whose two
    draws sit in different modules (a rename) counts in both. ``first`` and the stream
    order follow the alignment (hunks in A's order, inserted draws where they were
    inserted). ``g.graph["first_divergence"]`` is the node of the first draw that
    differs (None when the runs are identical); ``g.graph["title"]`` says what parted.
    """
    import networkx as nx

    g = nx.DiGraph(kind="diff", streams={}, roots=[], first_divergence=None,
                   labels=tuple(diff.labels))
    drawn = [d for h in diff.hunks for d in (*h.a_draws, *h.b_draws)]
    several = _several(drawn)
    sequence: list[tuple[str, str]] = []
    for h in diff.hunks:
        pairs: list[tuple[Draw | None, Draw | None]] = (
            [(None, d) for d in h.b_draws] if h.kind == "inserted" else
            [(d, None) for d in h.a_draws] if h.kind == "removed" else
            list(zip(h.a_draws, h.b_draws, strict=False)))
        for a, b in pairs:
            shown = b or a
            assert shown is not None
            keys = [_module_node(g, d.model, d.module, several, d.module_type)
                    for d in (shown, a) if d is not None]
            for key in dict.fromkeys(keys):
                node = g.nodes[key]
                if not node["draws"]:  # order boxes as in B; A's removed draws where they were
                    node["first"] = b.index if b is not None else h.b_index
                _count(node, shown)
                node.setdefault("status", {})
                node["status"][h.kind] = node["status"].get(h.kind, 0) + 1
            if shown.consumed:
                sequence.append((h.generator, keys[0]))
            if h.kind != "equal" and g.graph["first_divergence"] is None:
                g.graph["first_divergence"] = keys[-1]
    g.graph["roots"] = [n for n, a in g.nodes(data=True) if a["depth"] == 0]
    _add_streams(g, sequence)
    g.graph["title"] = _diff_title(diff)
    return g


def _diff_title(diff: Diff) -> str:
    import textwrap

    a, b = diff.labels
    head = f"rngtrace: {a} vs {b}"
    first = diff.first_divergence
    if first is None:
        return f"{head}: the same draws"
    cause = diff.cause.summary if diff.cause is not None else f"{first.kind} draws"
    lines = [f"{head}: {cause}",
             f"first divergence: {module_label(first.module)} ({first.kind}) at draw "
             f"{first.a_index} of {a}, draw {first.b_index} of {b}"]
    return "\n".join(textwrap.fill(line, 110) for line in lines)
