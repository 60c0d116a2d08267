"""Log files: a versioned JSON Lines format, written line by line and read as a stream.

:func:`save` writes a :class:`~rngtrace.Log`, :func:`load` reads one back, and
:class:`FileSink` streams a recording window to disk as it happens (``record(path=...)``).
The format is documented in ``docs/log-format.md``; in short, line 1 is a header
``{"rngtrace_log": 1, "level": ..., "meta": {...}, "gens": {...}}`` and every other line
is one record ``{"t": KIND, ...}``: ``"d"`` a draw, ``"e"`` an event, ``"p"`` a patch (the
final names of a draw written earlier with provisional ones), ``"u"`` usage seen (modules
called, parameters with a gradient) and ``"end"``. A file without its end record was cut
short (killed, crashed): it loads with a warning, marked ``complete=False``.

The loader never executes or unpickles anything: it reads JSON, checks every field's
type, and raises :class:`~rngtrace.LogFormatError` naming the file and line otherwise.

Example::

    >>> import os, tempfile, torch, rngtrace
    >>> with rngtrace.record() as log:
    ...     layer = torch.nn.Linear(4, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.rngtrace.jsonl")
    >>> rngtrace.save(log, path)
    >>> rngtrace.load(path).draws == log.draws
    True
"""

from __future__ import annotations

import os

from ..log import Log
from .files import is_log_file
from .format import FORMAT_VERSION, MAX_LINE
from .read import Reader
from .write import FileSink, save

__all__ = ["FORMAT_VERSION", "MAX_LINE", "FileSink", "is_log_file", "load", "save"]


def load(path: str | os.PathLike[str]) -> Log:
    """Read a log written by :func:`save` or ``record(path=...)``, streaming.

    Raises :class:`~rngtrace.LogFormatError` naming the file, the line and the problem
    for anything that is not an rngtrace log of a format this version reads. A file cut
    short by a crash (no end record, or a last line cut in the middle) loads with a
    ``RuntimeWarning``, marked ``complete=False``; its ``steps`` is then the step of the
    last draw and ``called``/``with_grad`` are None. Nothing in the file is executed.

    Example::

        >>> import rngtrace
        >>> rngtrace.load("no/such/file.jsonl")
        Traceback (most recent call last):
        ...
        rngtrace.errors.LogFormatError: no/such/file.jsonl: no such file
    """
    return Reader(os.fspath(path)).read()
