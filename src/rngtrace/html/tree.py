"""A log's modules as a collapsible tree: what each module and its submodules drew, per
phase and per generator, with numbered blocks that drew alike folded into one entry
(``{0..11}``, as ``rngtrace show`` folds its table: :func:`rngtrace.text.fold_numbered`).

:func:`build` makes the tree from :meth:`rngtrace.Log.module_stats`; :func:`render`
writes it as nested ``<details>`` elements (open and close without any script); each
module with draws of its own has an empty ``<div class="own">`` that the page's script
fills with those draws when the module is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..log import Draw, Log
from ..text import fold_numbered, plural
from .escape import esc


@dataclass
class Node:
    """A module (or the draws made outside any module), with its own and its subtree's
    consumption."""

    id: int
    model: str | None
    path: str | None  # None: outside modules
    name: str
    type: str | None = None
    draws: int = 0  # its own
    values: int = 0
    total: int = 0  # with its submodules'
    total_values: int = 0
    phases: dict[str, int] = field(default_factory=dict)  # subtree's draws per phase
    generators: dict[str, int] = field(default_factory=dict)
    first: float = float("inf")  # the subtree's first draw
    children: list[Node] = field(default_factory=list)


class Tree:
    """The module tree of one log: ``roots`` (one per model, and the outside), and
    ``node_of(draw)``, the id of the node a draw belongs to."""

    def __init__(self, log: Log) -> None:
        self.nodes: dict[tuple[str | None, str | None], Node] = {}
        self.roots: list[Node] = []
        several = len({d.model for d in log.draws if d.module is not None}) > 1
        for s in log.module_stats():
            n = self._node(s.model, s.module, several)
            n.type = s.module_type or n.type
            n.draws, n.values = s.draws, s.values
            self._add_up(n, s.model, s.module, s.draws, s.values, s.phases, s.generators,
                         s.first, several)
        for n in self.nodes.values():
            n.children.sort(key=lambda c: (c.first, c.name))
        self.roots.sort(key=lambda c: (c.first, c.name))

    def node_of(self, d: Draw) -> int:
        return self.nodes[(d.model, d.module)].id

    def _node(self, model: str | None, path: str | None, several: bool) -> Node:
        key = (model, path)
        n = self.nodes.get(key)
        if n is not None:
            return n
        if path is None:
            name = "- (outside modules)"
        elif path:
            name = path.rpartition(".")[2]
        else:
            name = f"{model} (root)" if several and model else "(root)"
        n = self.nodes[key] = Node(len(self.nodes), model, path, name)
        if path is None or path == "":
            self.roots.append(n)
        else:
            parent = self._node(model, path.rpartition(".")[0] if "." in path else "", several)
            parent.children.append(n)
        return n

    def _add_up(self, n: Node, model: str | None, path: str | None, draws: int, values: int,
                phases: dict[str, int], gens: dict[str, int], first: int,
                several: bool) -> None:
        """Count a module's draws in it and every ancestor."""
        while True:
            n.total += draws
            n.total_values += values
            for into, counts in ((n.phases, phases), (n.generators, gens)):
                for k, v in counts.items():
                    into[k] = into.get(k, 0) + v
            n.first = min(n.first, first)
            if not path:
                return
            path = path.rpartition(".")[0] if "." in path else ""
            n = self._node(model, path, several)


def _alike(n: Node, memo: dict[int, Any]) -> Any:
    """What must be equal for numbered siblings to fold: the subtree, names and counts."""
    got = memo.get(n.id)
    if got is None:
        got = memo[n.id] = (n.type, n.draws, n.values, tuple(sorted(n.phases.items())),
                            tuple(sorted(n.generators.items())),
                            tuple(("#" if c.name.isdecimal() else c.name, _alike(c, memo))
                                  for c in n.children))
    return got


def _entries(children: list[Node], memo: dict[int, Any]) -> Iterator[tuple[str, list[Node]]]:
    """Each child, or (three or more alike numbered ones) their folded label and them."""
    alike = [_alike(c, memo) if c.name.isdecimal() else None for c in children]
    for i, text in fold_numbered([c.name for c in children], alike):
        c = children[i]
        if text == c.name:
            yield text, [c]
        else:
            yield text, [x for x, a in zip(children, alike, strict=True)
                         if a is not None and a == alike[i]]


def _cells(n: Node, label: str, each: int = 0) -> str:
    phases = " ".join(f"{k}:{v:,}" for k, v in n.phases.items())
    gens = " ".join(sorted(n.generators))
    name = f"{label} \u00d7{each}" if each else label
    return (f'<span class="name">{esc(name)}</span><span class="type">{esc(n.type or "")}'
            f'</span><span class="num">{n.total:,}</span><span class="num">'
            f'{n.total_values:,}</span><span class="ph">{esc(phases)}</span>'
            f'<span class="gen">{esc(gens)}</span>')


HEAD = ('<div class="treehead" aria-hidden="true"><span></span><span>module</span><span>type</span>'
        '<span class="num">draws</span><span class="num">values</span><span>phases</span>'
        '<span>generators</span></div>')


def render(tree: Tree, log_id: int, own: Callable[[Node], str] | None = None) -> str:
    """The tree as nested ``<details>``; ``own(node)`` gives the HTML of a module's own
    draws (default: an empty ``<div class="own">`` the page's script fills)."""
    memo: dict[int, Any] = {}
    out = [HEAD]

    def node(n: Node, label: str, depth: int) -> None:
        path = "-" if n.path is None else (n.path or "(root)")
        opened = " open" if depth == 0 and n.path is not None else ""
        out.append(f'<details class="mod" data-node="{log_id}-{n.id}"{opened} '
                   f'data-path="{esc(path)}"><summary title="{esc(path)}">'
                   f'{_cells(n, label)}</summary>')
        if n.draws:
            out.append(own(n) if own else
                       f'<div class="own" data-node="{log_id}-{n.id}"></div>')
        children(n.children, depth + 1)
        out.append("</details>")

    def children(kids: list[Node], depth: int) -> None:
        for text, members in _entries(kids, memo):
            if len(members) == 1:
                node(members[0], text, depth)
                continue
            first = members[0]
            out.append(f'<details class="mod fold" data-path="{esc(first.path or "")}">'
                       f'<summary title="{esc(_fold_title(members))}">'
                       f'{_cells(first, text, len(members))}</summary>')
            for m in members:
                node(m, m.name, depth + 1)
            out.append("</details>")

    children(tree.roots, 0)
    return "".join(out)


def _fold_title(members: list[Node]) -> str:
    return (f"{plural(len(members), 'numbered block')} that drew alike; the counts are "
            f"each one's")
