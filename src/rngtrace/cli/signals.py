"""SIGTERM and SIGHUP for the verbs that run programs: end the work as Ctrl-C does.

By default these signals kill Python on the spot: ``rngtrace run`` would leave its log
under its temporary name, ``rngtrace compare`` its temporary copies and the program
(a ``kill``, a cancelled CI job, ``timeout``). Inside :func:`signals_end_the_work` they
raise :class:`Ended` instead, so that ``finally`` blocks and cleanup run.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any


class Ended(BaseException):
    """Ends the work from inside it (a signal, or ``run --steps`` reached). A
    BaseException, so that a program's ``except Exception`` lets it through."""

    def __init__(self, why: str, code: int) -> None:
        super().__init__(why)
        self.why, self.code = why, code


@contextmanager
def signals_end_the_work() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP raise :class:`Ended` (exit code 128 + the signal).

    Only default handlers are replaced, and only in the main thread; a program that
    sets its own handlers inside replaces these. The old handlers come back on exit.
    """
    def handler(signum: int, frame: Any) -> None:
        raise Ended(f"ended by {signal.Signals(signum).name}", 128 + signum)

    saved = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            with suppress(ValueError):  # not the main thread: left alone
                saved[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
