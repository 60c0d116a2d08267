"""Streams that one run adds and that move nothing the two runs share.

A stream only one run has, each of whose draws is made at init into a parameter or
buffer the other run does not have (or, drawing into a temporary, inside a module the
other run does not have), cannot have changed a value the runs share: no draw of the
other run comes from it, and nothing the other run has is drawn from it. The typical
case is a model initialised with :func:`rngtrace.stable_init`, whose parameters each
have a stream of their own: a module added in one version adds streams, and nothing
else moves. Such a stream is an *addition*: :func:`rngtrace.diff` looks for no cause in
it, and ``Diff.agrees`` holds when additions are the only difference.

A stream both runs have, or one that also draws into something both runs have, or one
that draws outside init (a new module's dropout on a generator of its own), is never an
addition: it is compared, and explained, as any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..log import Draw, Log

if TYPE_CHECKING:
    from .causes import StreamView


def added_streams(a: Log, b: Log, views: Sequence[StreamView]) -> frozenset[str]:
    """The names of the aligned streams (``views``) that are additions."""
    owners = {True: _owned(a), False: _owned(b)}
    out = set()
    for v in views:
        if v.pair.a_name is not None and v.pair.b_name is not None:
            continue
        in_a = v.pair.b_name is None
        theirs = owners[not in_a]
        draws = v.a if in_a else v.b
        if draws and all(_adds(d, theirs) for d in draws):
            out.add(v.name)
    return frozenset(out)


def _owned(log: Log) -> tuple[set[str], set[str]]:
    """What a run has: the parameters and buffers it drew into or gave a gradient, and
    the modules that drew or were called."""
    targets = {d.target for d in log.draws if d.target is not None}
    targets.update(t for _, t in log.with_grad or ())
    modules = {d.module for d in log.draws if d.module is not None}
    modules.update(m for _, m in log.called or ())
    return targets, modules


def _adds(d: Draw, theirs: tuple[set[str], set[str]]) -> bool:
    """Whether ``d`` is an init draw into something the other run does not have."""
    if d.phase != "init":
        return False
    if d.target is not None:
        return d.target not in theirs[0]
    return d.module is not None and d.module != "" and d.module not in theirs[1]
