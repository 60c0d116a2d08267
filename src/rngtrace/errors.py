"""The exceptions rngtrace raises, all of them here. Catch :class:`RngtraceError` to catch
them all."""

from __future__ import annotations


class RngtraceError(Exception):
    """The root of every error rngtrace raises on purpose."""


class RecordError(RngtraceError):
    """``record()`` was used in a way it cannot support (e.g. nested windows)."""


class LogFormatError(RngtraceError):
    """A log file is not a readable rngtrace log.

    The message names the file, the line (when there is one) and what is wrong.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.reason = message


class IncomparableLogsError(RngtraceError):
    """Two logs cannot be compared draw by draw: they were recorded at different levels
    (op and module), or their CPU generator states were digested in different ways (one
    recorded by rngtrace 0.1). The message says which, and how to record them again."""


class LevelError(IncomparableLogsError):
    """Two logs of different levels (op and module) cannot be compared draw by draw."""


class StableInitError(RngtraceError):
    """``stable_init()`` could not build the model: bad arguments, or a factory that did
    not build the same structure twice (the message names the first difference)."""


class GraphvizNotFound(RngtraceError):
    """Graphviz's ``dot`` program is needed to render and is not installed."""


class UsageError(RngtraceError):
    """The command line is wrong (the CLI prints the message and exits with code 2)."""
