"""Progress for long work on a terminal: after a second, one line on stderr that says
what is being done and for how long, rewritten in place and cleared at the end.

Nothing is written when stderr is not a terminal (piped, redirected, a CI log) or when
the work takes less than :data:`DELAY` seconds, so that short commands and scripts see
exactly the output they saw before.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from ..text import printable

DELAY = 1.0  # seconds before the line appears
EVERY = 0.5  # seconds between updates


@contextmanager
def progress(what: str, stream: TextIO | None = None) -> Iterator[None]:
    """Show ``rngtrace: WHAT ... 3 s`` on a terminal's stderr while the block runs longer
    than a second; clear it when the block ends."""
    out = sys.stderr if stream is None else stream
    if not _is_terminal(out):
        yield
        return
    done = threading.Event()
    shown = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        if done.wait(DELAY):
            return
        while not done.is_set():
            out.write(f"\rrngtrace: {printable(what)} ... {time.monotonic() - start:.0f} s")
            out.flush()
            shown.set()
            done.wait(EVERY)

    thread = threading.Thread(target=tick, name="rngtrace-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if shown.is_set():
            out.write("\r\x1b[K")  # the line cleared: what follows prints in its place
            out.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or not a file
        return False
