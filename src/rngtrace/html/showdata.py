"""What ``rngtrace show`` shows, as data: ``show --json`` prints it, and the HTML page
of a log (:mod:`rngtrace.html`) is built from it.

The shape follows ``Diff.to_dict()`` and ``RankReport.to_dict()``: plain JSON types,
records as objects with their Python field names, tuples as lists. See
:func:`show_data` and ``docs/log-format.md`` (show --json).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any

from ..diffing import copied_streams, unused_consumers
from ..log import Draw, Log

#: The version of the JSON ``show --json`` prints; a new key does not change it.
SHOW_JSON_VERSION = 1


def show_data(log: Log, path: str, phase: str | None = None, module: str | None = None,
              limit: int = 100) -> dict[str, Any]:
    """A log as ``show`` sees it: where it comes from, its totals, the per-module table,
    the events, unused consumers, copied worker streams, and its draws (those passing
    ``phase`` and ``module``, as ``show --phase/--module`` filter them; the first
    ``limit`` of them, all with 0).

    >>> import rngtrace
    >>> data = show_data(rngtrace.Log(), "empty.rngtrace.jsonl")
    >>> data["draws"], data["listed"], data["matching"]
    (0, [], 0)
    """
    draws = [d for d in log.draws if matches(d, phase, module)]
    shown = dataclasses.replace(log, draws=draws) if len(draws) != len(log.draws) else log
    return {
        "show_json": SHOW_JSON_VERSION,
        "file": path,
        "level": log.level,
        "complete": log.complete,
        "steps": log.steps,
        "meta": log.meta,
        "draws": len(log.draws),
        "values": log.values,
        "generators": [dataclasses.asdict(g) for g in log.generators.values()],
        "filter": {"phase": phase, "module": module},
        "matching": len(draws),
        "modules": [dataclasses.asdict(s) for s in shown.module_stats()],
        "events": [dataclasses.asdict(e) for e in log.events],
        "unused": [u.to_dict() for u in unused_consumers(log)],
        "copied_streams": [dataclasses.asdict(c) for c in copied_streams(log)],
        "listed": [dataclasses.asdict(d) for d in draws[:limit or len(draws)]],
    }


def matches(d: Draw, phase: str | None, pattern: str | None) -> bool:
    """Whether a draw passes ``show --phase`` and ``--module``: a module (or target) name
    matches itself and its submodules; ``*``, ``?`` and ``[`` make it a wildcard pattern.

    >>> import rngtrace
    >>> d = rngtrace.Draw(0, "aten::uniform_", "blocks.0.attn", "Linear", "blocks.0.attn.weight",
    ...                   "init", 0, (2,), "float32", "cpu", 2, {}, "default:cpu", None, None,
    ...                   True, None, None, None)
    >>> matches(d, None, "blocks.0"), matches(d, None, "blocks.*.weight")
    (True, True)
    >>> matches(d, "forward", None)
    False
    """
    if phase is not None and d.phase != phase:
        return False
    if pattern is None:
        return True
    names = [d.where] + ([d.module] if d.module is not None else [])
    names += [d.target] if d.target is not None else []
    if any(c in pattern for c in "*?["):
        return any(fnmatch.fnmatchcase(n, pattern) for n in names)
    return any(n == pattern or n.startswith(pattern + ".") for n in names)
