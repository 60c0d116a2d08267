"""The text of a :class:`CheckReport`: a headline, then each finding with its evidence,
why it matters and the fix."""

from __future__ import annotations

import textwrap

from ..text import plural
from .model import CheckReport, Finding

_EVIDENCE = 6  # evidence lines per finding
_WIDTH = 100


def headline(r: CheckReport) -> str:
    logs = r.logs[0] if len(r.logs) == 1 else plural(len(r.logs), "log")
    if not r.findings:
        return f"rngtrace check: {logs}: nothing found"
    parts = [plural(len(r.errors), "error") if r.errors else "",
             plural(len(r.warnings), "warning") if r.warnings else ""]
    return (f"rngtrace check: {logs}: {plural(len(r.findings), 'finding')} "
            f"({', '.join(p for p in parts if p)})")


def render(r: CheckReport) -> str:
    lines = [headline(r)]
    if len(r.logs) > 1:
        lines += [f"  {label}" + (f" (rank {rank})" if rank is not None else "")
                  for label, rank in zip(r.logs, r.ranks, strict=True)]
    for f in r.findings:
        lines.append("")
        lines += finding_lines(f)
    if r.notes:
        lines.append("")
        lines += [x for n in r.notes for x in _wrap(f"not checked: {n}", "  ")]
    return "\n".join(lines)


def finding_lines(f: Finding) -> list[str]:
    """One finding: its first line, then evidence, why and fix, indented."""
    out = _wrap(f"{f.severity.upper()} [{f.kind}] {f.summary}", "    ")
    if len(f.logs) > 1:
        out += _wrap(f"in: {', '.join(f.logs)}", "    ", "  ")
    out.append("  evidence:")
    out += [x for e in f.evidence[:_EVIDENCE] for x in _wrap(e.line(), "      ", "    ")]
    if len(f.evidence) > _EVIDENCE:
        out.append(f"    ... {len(f.evidence) - _EVIDENCE} more")
    out += _wrap(f"why: {f.why}", "    ", "  ")
    out += _wrap(f"fix: {f.fix}", "    ", "  ")
    return out


def _wrap(text: str, indent: str, first: str = "") -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=first, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [first]
