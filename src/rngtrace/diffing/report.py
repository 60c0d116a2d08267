"""The text of a :class:`~rngtrace.diffing.Diff`: the cause first, then what it did.

:func:`render` is what ``Diff.report()`` and ``rngtrace diff`` print; :func:`unused_lines`
is shared with ``rngtrace show``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..log import module_label

if TYPE_CHECKING:
    from .model import Cause, Diff, Hunk, Unused

MAX_HUNKS = 40  # hunk lines in a report; to_dict() has them all
MAX_NAMES = 8  # parameter names listed before "and N more"


def render(d: Diff) -> str:
    """The report of a diff, as lines of text."""
    la, lb = d.labels
    lines: list[str] = []
    if d.identical:
        n = sum(len(h) for h in d.hunks)
        lines.append(f"rngtrace diff: {la} and {lb} drew the same values in the same places "
                     f"({n:,} draws, {_plural(len(d.streams), 'generator')}).")
    else:
        lines.append(f"rngtrace diff: {la} and {lb} draw different random numbers.")
        causes = [c for c in d.causes if not c.consequence]
        for n, c in enumerate(causes):
            lines.append("")
            lines += _cause(d, c, "Cause" if n == 0 else "Also")
        later = [c for c in d.causes if c.consequence]
        if later:
            lines += ["", "Consequences (not causes):"]
            lines += [f"  {c.summary}" for c in later]
        legend = "" if (la, lb) == ("A", "B") else f" (A: {la}, B: {lb})"
        lines += ["", f"Streams{legend}:"]
        names = [s.name if s.b_name in (None, s.a_name) else f"{s.a_name} ~ {s.b_name}"
                 for s in d.streams]
        width = max(len(n) for n in names)
        for s, name in zip(d.streams, names, strict=True):
            counts = ", ".join(f"{n:,} {k}" for k, n in s.counts.items())
            lines.append(f"  {name.ljust(width)}  A {s.a_draws:,}, B {s.b_draws:,} draws: "
                         f"{counts}")
        if d.affected_targets:
            n = len(d.affected_targets)
            what = _plural(n, "parameter or buffer", "parameters or buffers")
            lines += ["", f"{what} start{'s' if n == 1 else ''} from other values: "
                          f"{_list(d.affected_targets)}"]
    unused = unused_lines(d.unused_a, la) + unused_lines(d.unused_b, lb)
    if unused:
        lines += ["", "Unused consumers (drew at init, never used in the window):"]
        lines += unused
    if d.notes:
        lines += [""] + [f"Note: {n}" for n in d.notes]
    if not d.identical:
        lines += ["", "Hunks (draw indices in A and B; @: where an insertion goes):"]
        shown = d.hunks[:MAX_HUNKS]
        for h in shown:
            lines.append("  " + _hunk(h))
        if len(d.hunks) > len(shown):
            lines.append(f"  ... {len(d.hunks) - len(shown):,} more hunks (--json has them all)")
    return "\n".join(lines)


def _cause(d: Diff, c: Cause, head: str) -> list[str]:
    la, lb = d.labels
    out = [f"{head}: {c.summary}"]
    if (c.site or c.code) and c.kind != "state":
        out.append(f"  at {c.site or '?'}" + (f": {c.code}" if c.code else ""))
    at = []
    if c.a_index is not None:
        at.append(f"draw {c.a_index} of {la}")
    if c.b_index is not None:
        at.append(f"draw {c.b_index} of {lb}")
    if at:
        out.append(f"  first at {', '.join(at)}, on {c.generator}")
    if c.kind in ("inserted", "removed", "changed", "reordered", "generator") and c.values:
        out.append(f"  it draws {c.values:,} values itself")
    if c.shifted_draws:
        out.append(f"  it shifts {_plural(c.shifted_draws, 'later draw')} of {c.generator}: "
                   f"{_plural(len(c.shifted_targets), 'parameter')}, "
                   f"{c.shifted_values:,} values")
    elif c.kind != "changed":
        out.append(f"  it shifts no later draw of {c.generator}")
    if c.shifted_draws and _agree_again(d, c):
        out.append("  after it the streams agree again")
    if c.detail:
        out.append(f"  {c.detail}")
    out += _unused_hint(d, c)
    return out


def _agree_again(d: Diff, c: Cause) -> bool:
    last = max(c.hunks)
    return any(h.kind == "equal" and h.generator == c.generator for h in d.hunks[last + 1:])


def _unused_hint(d: Diff, c: Cause) -> list[str]:
    """Say so when the cause's module is never used: the story's real culprit."""
    if c.kind not in ("inserted", "removed"):
        return []
    unused, label = (d.unused_b, d.labels[1]) if c.kind == "inserted" else (
        d.unused_a, d.labels[0])
    if not unused:
        return []
    mods = set(c.modules)
    hits = [u for u in unused if module_label(u.module) in mods]
    if not hits:
        return []
    names = ", ".join(u.where if u.reason == "never called" else ", ".join(u.targets)
                      for u in hits)
    how = ("never calls" if all(u.reason == "never called" for u in hits)
           else "never uses")
    it = "it" if len(hits) == 1 else "they"
    return [f"  {label} {how} {names}: {it} only move{'s' if it == 'it' else ''} the random "
            f"stream (remove {'it' if it == 'it' else 'them'}, or build "
            f"{'it' if it == 'it' else 'them'} after everything else)"]


def unused_lines(unused: Sequence[Unused], label: str | None = None) -> list[str]:
    """One line per unused consumer (``rngtrace show`` prints these too)."""
    out = []
    for u in unused:
        who = f"{label}: " if label else ""
        what = f"{u.where} ({u.module_type})" if u.module_type else u.where
        if u.reason == "no gradient":
            what = f"{', '.join(u.targets)} in {what}"
        out.append(f"  {who}{what}, {u.reason}: {_plural(u.draws, 'draw')}, {u.values:,} "
                   f"values" + (f" at {u.site}" if u.site else ""))
    return out


def _hunk(h: Hunk) -> str:
    def span(start: int, stop: int, n: int) -> str:
        if n == 0:
            return f"@{start}"
        return f"{start}" if stop - start == 1 else f"{start}-{stop - 1}"

    draws = h.draws
    first, last = module_label(draws[0].module), module_label(draws[-1].module)
    where = first if first == last else f"{first} .. {last}"
    gen = h.generator if h.b_generator == h.generator else f"{h.generator}~{h.b_generator}"
    return (f"{h.kind:<8}  A {span(h.a_index, h.a_stop, len(h.a_draws)):<11} "
            f"B {span(h.b_index, h.b_stop, len(h.b_draws)):<11} {gen:<12} "
            f"{_plural(len(h), 'draw'):>10}  {where}")


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _list(names: Sequence[str]) -> str:
    if len(names) <= MAX_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:MAX_NAMES])} and {len(names) - MAX_NAMES:,} more"
