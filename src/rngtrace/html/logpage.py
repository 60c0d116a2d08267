"""The page of one log (``rngtrace show LOG --html FILE``): where it comes from, its
totals and the hazards ``rngtrace check`` finds in it, unused consumers, copied worker
streams and events, then the module tree, every draw (filterable), and the picture."""

from __future__ import annotations

from ..checking import CheckReport, check
from ..diffing import copied_streams, unused_consumers, unused_lines
from ..errors import RngtraceError
from ..log import Log
from ..summary import headline
from .escape import esc
from .findings import cards, counts, events
from .page import Logs, meta_lines, page, picture, section


def log_page(log: Log, label: str = "log", *, with_picture: bool = True) -> str:
    """The whole page of ``log``, called ``label`` (its file name)."""
    logs = Logs()
    logs.add(log, label)
    found = _hazards(log, label)
    bad = bool(found and found.findings)
    parts = [f"<header><h1>rngtrace show: {esc(label)}</h1>",
             *(f'<p class="meta">{esc(x)}</p>' for x in meta_lines(log)), "</header>",
             f'<div class="verdict {"warn" if bad else ""}" role="status">'
             f"{esc(headline(log))}</div>"]
    if found is not None and found.findings:
        parts.append(section(f"Hazards ({counts(found)})",
                             cards(found, [label]), "hazards"))
    unused = unused_consumers(log)
    if unused:
        parts.append(section("Unused consumers (drew at init, never used in the window)",
                             "".join(f'<p class="mono">{esc(x.strip())}</p>'
                                     for x in unused_lines(unused)), "unused"))
    copied = copied_streams(log)
    if copied:
        parts.append(section("Workers with identical streams", "".join(
            f'<p class="mono">{esc(c.line())}</p>' for c in copied), "copied"))
    if log.events:
        parts.append(section("Events", events(log), "events"))
    parts.append(logs.filters())
    parts.append(section("Modules", logs.tree(0), "modules"))
    if with_picture and log.draws:
        parts.append(section("Picture", picture(log, len(log.module_stats())), "picture"))
    kind = "records" if log.level == "module" else "draws"
    parts.append(section(f"All {kind}", '<div id="listing"></div>', "draws"))
    return page(f"rngtrace show: {label}", "\n".join(parts), logs.data(kind="show"))


def _hazards(log: Log, label: str) -> CheckReport | None:
    """What check finds in an op-level log (None for a light log, which it cannot read)."""
    if log.level != "op":
        return None
    try:
        return check(log, labels=[label])
    except RngtraceError:
        return None
