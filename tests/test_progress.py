"""rngtrace.cli.progress: a line on a terminal's stderr for work longer than a second,
nothing when piped."""

from __future__ import annotations

import io
import time

from rngtrace.cli import progress as progress_module
from rngtrace.cli.progress import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_when_piped_or_quick(monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    piped = io.StringIO()
    with progress("loading x", piped):
        time.sleep(0.05)
    assert piped.getvalue() == ""
    monkeypatch.setattr(progress_module, "DELAY", 5.0)
    quick = _Terminal()
    with progress("loading x", quick):
        pass
    assert quick.getvalue() == ""


def test_a_line_on_a_terminal_then_cleared(monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module, "EVERY", 0.01)
    term = _Terminal()
    with progress("loading big\x1b[2J.jsonl", term):
        time.sleep(0.1)
    text = term.getvalue()
    assert text.startswith("\rrngtrace: loading big\\x1b[2J.jsonl ... 0 s")  # escaped
    assert text.endswith("\r\x1b[K")  # cleared: what follows prints in its place
