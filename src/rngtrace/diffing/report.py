"""The text of a :class:`~rngtrace.diffing.Diff`: the cause first, then what it did.

:func:`render` is what ``Diff.report()`` and ``rngtrace diff`` print; :func:`unused_lines`
is shared with ``rngtrace show``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..text import module_label, name_list, plural
from .model import ONE_RUN, CauseKind

if TYPE_CHECKING:
    from .model import Cause, Diff, Hunk, Unused

MAX_HUNKS = 40  # hunk lines in a report; to_dict() has them all
MAX_NAMES = 8  # parameter names listed before "and N more"
MAX_LINES = 6  # lines of code listed under a cause
MAX_UNUSED = 8  # unused consumers listed per run
WIDTH = 100  # the default width of a report
# causes that draw values of their own (the others shift what is drawn)
_OWN_DRAWS: tuple[CauseKind, ...] = ("inserted", "removed", "changed", "reordered",
                                     "generator")


def render(d: Diff, width: int = WIDTH) -> str:
    """The report of a diff, as lines of text no wider than ``width`` where they can be
    broken (0: never broken); a broken line goes on indented by four more spaces."""
    la, lb = d.labels
    lines: list[str] = []
    if d.identical:
        n = sum(len(h) for h in d.hunks)
        lines.append(f"rngtrace diff: {la} and {lb} drew the same values in the same places "
                     f"({n:,} draws, {plural(len(d.streams), 'generator')})"
                     + (f", under other names: {d.renamed}." if d.renamed else "."))
    elif d.agrees:
        lines += _additions(d)
    else:
        lines.append(f"rngtrace diff: {la} and {lb} draw different random numbers.")
        if d.renamed:
            lines.append(f"Renamed in {lb} (same draws, same values; {lb}'s names are shown "
                         f"as {la}'s below): {d.renamed}.")
        lines += _causes(d, width)
        lines += _streams(d)
        lines += _targets(d)
    both = {(u.module, u.targets, u.reason) for u in d.unused_a} & {
        (u.module, u.targets, u.reason) for u in d.unused_b}
    unused = (unused_lines([u for u in d.unused_a if (u.module, u.targets, u.reason) in both],
                           "both", MAX_UNUSED)
              + unused_lines([u for u in d.unused_a
                              if (u.module, u.targets, u.reason) not in both], la, MAX_UNUSED)
              + unused_lines([u for u in d.unused_b
                              if (u.module, u.targets, u.reason) not in both], lb, MAX_UNUSED))
    if unused:
        lines += ["", "Unused consumers (drew at init, never used in the window):"]
        lines += unused
    if d.notes:
        lines += [""] + [f"Note: {n}" for n in d.notes]
    if not d.agrees:
        lines += ["", "Hunks (draw indices in A and B; @: where an insertion goes):"]
        shown = d.hunks[:MAX_HUNKS]
        lines += ["  " + row for row in _hunk_rows(shown)]
        if len(d.hunks) > len(shown):
            lines.append(f"  ... {len(d.hunks) - len(shown):,} more hunks (--json has them all)")
    return "\n".join(wrap(lines, width))


def _additions(d: Diff) -> list[str]:
    """The headline of runs that differ by added streams only, and what each adds."""
    la, lb = d.labels
    shared = sum(len(h) for h in d.hunks if h.kind == "equal")
    added = [h for h in d.hunks if h.kind != "equal"]
    per_run = []
    for label, side in ((la, "a_draws"), (lb, "b_draws")):
        n = sum(len(getattr(h, side)) for h in added)
        if n:
            per_run.append(f"{label} adds {plural(n, 'draw')} of its own")
    lines = [f"rngtrace diff: {la} and {lb} agree on everything they share ({shared:,} draws); "
             f"{' and '.join(per_run)}, on streams of their own, which move nothing both "
             f"runs have.", "",
             "Added (at init, into parameters or modules only one run has; harmless to the "
             "rest):"]
    for h in added:
        label, draws = (la, h.a_draws) if h.a_draws else (lb, h.b_draws)
        for dr in draws:
            what = dr.target or module_label(dr.module)
            at = f" at {dr.site}" if dr.site else ""
            lines.append(f"  {label}: {what}, {dr.numel:,} values on {h.generator}{at}")
    return lines


def wrap(lines: Sequence[str], width: int) -> list[str]:
    """Break lines longer than ``width`` at spaces, each piece after the first indented
    four spaces more than the line; a word longer than the width stays whole.

    >>> wrap(["  it shifts 90 later draws of default:cpu: 77 parameters"], 30)
    ['  it shifts 90 later draws of', '      default:cpu: 77', '      parameters']
    """
    if width <= 0:
        return list(lines)
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out += textwrap.wrap(line, width, initial_indent="", subsequent_indent=indent + "    ",
                             break_long_words=False, break_on_hyphens=False,
                             drop_whitespace=True) or [line]
    return out


def _causes(d: Diff, width: int) -> list[str]:
    """The causes: the first and every one that shifts something in full, those that
    shift nothing later folded to one line each; then the consequences."""
    causes = [c for c in d.causes if not c.consequence]
    lines: list[str] = []
    folded = []
    for n, c in enumerate(causes):
        if n and not c.shifted_draws:
            folded.append(c)
            continue
        lines.append("")
        lines += _cause(d, c, "Cause" if n == 0 else "Also", width)
    if folded:
        lines += ["", f"Also, shifting no later draw ({len(folded)}):"]
        for c in folded:
            at = f" at {c.site}" if c.site and len(c.lines) <= 1 else ""
            lines.append(f"  {c.summary}{at}")
    later = [c for c in d.causes if c.consequence]
    if later:
        lines += ["", "Consequences (not causes):"]
        for c in later:
            lines.append(f"  {c.summary}" + (f". {c.detail}" if c.detail else ""))
    return lines


def _streams(d: Diff) -> list[str]:
    la, lb = d.labels
    legend = "" if (la, lb) == ("A", "B") else f" (A: {la}, B: {lb})"
    lines = ["", f"Streams{legend}:"]
    names = [s.name if s.b_name in (None, s.a_name) or s.a_name is None
             else f"{s.a_name} ~ {s.b_name}" for s in d.streams]
    width = max((len(n) for n in names), default=0)
    for s, name in zip(d.streams, names, strict=True):
        counts = ", ".join(f"{n:,} {k}" for k, n in s.counts.items())
        lines.append(f"  {name.ljust(width)}  A {s.a_draws:,}, B {s.b_draws:,} draws: "
                     f"{counts}")
    return lines


def _targets(d: Diff) -> list[str]:
    """Parameters that start from other values: those both runs have first."""
    new = set(d.new_targets)
    shared = [t for t in d.affected_targets if t not in new]
    lines = []
    if shared:
        n = len(shared)
        lines += ["", f"{plural(n, 'parameter or buffer', 'parameters or buffers')} of both "
                      f"runs start{'s' if n == 1 else ''} from other values: {_list(shared)}"]
    if d.new_targets:
        only = [t for t in d.affected_targets if t in new]
        lines += ["", f"{plural(len(only), 'parameter or buffer', 'parameters or buffers')} "
                      f"only one run has: {_list(only)}"]
    return lines


def _cause(d: Diff, c: Cause, head: str, width: int) -> list[str]:
    la, lb = d.labels
    out = [f"{head}: {c.summary}"]
    if len(c.lines) > 1:
        for site, code, n in c.lines[:MAX_LINES]:
            line = f"  at {site or '?'} ({plural(n, 'draw')})"
            if code:  # one line each: the code is cut to the width
                room = width - len(line) - 2 if width > 0 else len(code)
                line += f": {code if len(code) <= room else code[:max(room - 3, 8)] + '...'}"
            out.append(line)
        if len(c.lines) > MAX_LINES:
            out.append(f"  and {len(c.lines) - MAX_LINES:,} more lines of code")
    elif (c.site or c.code) and c.kind != "state":
        out.append(f"  at {c.site or '?'}" + (f": {c.code}" if c.code else ""))
    at = []
    if c.a_index is not None:
        at.append(f"draw {c.a_index} of {la}")
    if c.b_index is not None:
        at.append(f"draw {c.b_index} of {lb}")
    if at:
        out.append(f"  first at {', '.join(at)}, on {c.generator}")
    if c.kind in _OWN_DRAWS and c.values:
        out.append(f"  it draws {c.values:,} values itself")
    if c.shifted_draws and c.shifted_targets:
        out.append(f"  it shifts {plural(c.shifted_draws, 'later draw')} of {c.generator}: "
                   f"{plural(len(c.shifted_targets), 'parameter')}, "
                   f"{c.shifted_values:,} values")
    elif c.shifted_draws:
        # no count of values: a light-mode CPU record says whether the state moved, not
        # by how much ("0 values" would read as none)
        values = f" ({c.shifted_values:,} values)" if c.shifted_values else ""
        out.append(f"  it shifts {plural(c.shifted_draws, 'later draw')} of {c.generator}"
                   f"{values}, none of them into a parameter")
    elif c.kind != "changed":
        out.append(f"  it shifts no later draw of {c.generator}")
    if c.shifted_draws and _agree_again(d, c):
        out.append("  after it the streams agree again")
    if c.detail:
        out.append(f"  {c.detail}")
    out += _unused_hint(d, c)
    return out


def _agree_again(d: Diff, c: Cause) -> bool:
    if not c.hunks:
        return False
    last = max(c.hunks)
    return any(h.kind == "equal" and h.generator == c.generator for h in d.hunks[last + 1:])


def _unused_hint(d: Diff, c: Cause) -> list[str]:
    """Say so when the cause's module is never used: the story's real culprit."""
    if c.kind not in ONE_RUN:
        return []
    unused, label = (d.unused_b, d.labels[1]) if c.kind == "inserted" else (
        d.unused_a, d.labels[0])
    if not unused:
        return []
    mods = set(c.modules)
    hits = [u for u in unused if module_label(u.module) in mods
            or any(str(u.module).startswith(m + ".") for m in mods)]
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


def unused_lines(unused: Sequence[Unused], label: str | None = None,
                 limit: int | None = None) -> list[str]:
    """One line per unused consumer (``rngtrace show`` prints these too), the first
    ``limit`` of them and a count of the rest."""
    out = []
    for u in unused[:limit]:
        who = f"{label}: " if label else ""
        what = f"{u.where} ({u.module_type})" if u.module_type else u.where
        if u.reason == "no gradient":
            what = f"{', '.join(u.targets)} in {what}"
        out.append(f"  {who}{what}, {u.reason}: {plural(u.draws, 'draw')}, {u.values:,} "
                   f"values" + (f" at {u.site}" if u.site else ""))
    if limit is not None and len(unused) > limit:
        out.append(f"  {label + ': ' if label else ''}and {len(unused) - limit:,} more")
    return out


def _hunk_rows(hunks: Sequence[Hunk]) -> list[str]:
    """One row per hunk, its columns as wide as their widest cell."""
    def span(start: int, stop: int, n: int) -> str:
        if n == 0:
            return f"@{start}"
        return f"{start}" if stop - start == 1 else f"{start}-{stop - 1}"

    cells = []
    for h in hunks:
        draws = h.draws
        first, last = module_label(draws[0].module), module_label(draws[-1].module)
        where = _span(first, last)
        gen = h.generator if h.b_generator == h.generator else f"{h.generator}~{h.b_generator}"
        cells.append((h.kind, "A " + span(h.a_index, h.a_stop, len(h.a_draws)),
                      "B " + span(h.b_index, h.b_stop, len(h.b_draws)), gen,
                      plural(len(h), "draw"), where))
    if not cells:
        return []
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    return ["  ".join([*(c.rjust(w) if i == 4 else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row[:5], widths, strict=True))),
                       row[5]]) for row in cells]


def _span(first: str, last: str) -> str:
    """``first .. last``, their common dotted head said once: ``enc.1: q .. k``."""
    if first == last:
        return first
    a, b = first.split("."), last.split(".")
    n = 0
    while n < min(len(a), len(b)) - 1 and a[n] == b[n]:
        n += 1
    if n == 0:
        return f"{first} .. {last}"
    return f"{'.'.join(a[:n])}: {'.'.join(a[n:])} .. {'.'.join(b[n:])}"


def _list(names: Sequence[str]) -> str:
    return name_list(names, MAX_NAMES)
