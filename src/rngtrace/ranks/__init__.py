"""Comparing the ranks of one job: do they draw the same values where they should?

:func:`compare_ranks` takes the logs of a job's ranks (``rngtrace run`` under torchrun
writes ``<stem>.rank<R>.rngtrace.jsonl``) and aligns their streams per parameter (by
state_dict key), per module drawing in forward (dropout masks) and per sampler
(``randperm``), never by position. Each relation is ``same`` (same ops, arguments,
local shapes and generator states: the same values), ``differ`` (with why: another
seed per rank, extra draws on one rank, a reseed on one rank) or ``missing``, and is
judged for the parallelism the logs show: replicated parameters that differ are a bug
unless DDP broadcasts them (seen from its ``module.`` prefix); sharded (DTensor,
FSDP2) parameters whose shards drew from the same state are a bug. :mod:`.compare`
aligns, :mod:`.assemble` judges, :mod:`.report` writes the text.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..log import Log
from .assemble import build
from .model import RELATIONS, RankInfo, RankReport, Relation

__all__ = ["RELATIONS", "RankInfo", "RankReport", "Relation", "compare_ranks"]


def compare_ranks(logs: Sequence[Log], labels: Sequence[str] | None = None) -> RankReport:
    """Compare the logs of one job's ranks; see the module documentation.

    Ranks come from each header's ``meta["dist"]`` (the order given when a header has
    none). ``report.same`` is True when every parameter's initial draws agree across
    ranks (``rngtrace ranks`` exits 0, else 1); ``str(report)`` is the text report,
    ``report.to_dict()`` the data.

    >>> import torch, rngtrace
    >>> def rank(r, seed):
    ...     torch.manual_seed(seed)
    ...     with rngtrace.record() as log:
    ...         torch.nn.Linear(2, 2)
    ...     log.meta["dist"] = {"rank": r, "world_size": 2}
    ...     return log
    >>> rep = rngtrace.compare_ranks([rank(0, 0), rank(1, 0)])
    >>> rep.same, [p.relation for p in rep.parameters]
    (True, ['same', 'same'])
    >>> rep = rngtrace.compare_ranks([rank(0, 0), rank(1, 1)])
    >>> rep.same, rep.first_difference.name, rep.first_difference.groups
    (False, 'weight', ((0,), (1,)))

    Args:
        logs: two or more logs (``rngtrace.load`` reads them from files).
        labels: how the report names each log (default: its file name).
    """
    return build(logs, labels)
