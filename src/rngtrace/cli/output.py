"""Where the verbs write logs: never over a file that is not a log, never half a file.

``rngtrace run`` writes its log under a temporary name next to the requested one and
moves it into place at the end (:func:`settle`), so that a program that fails at its
start leaves a good earlier log as it was, and a log that could not be written is
reported instead of being replaced by half of one. Checked before anything runs
(:func:`check_output`): the file named by ``-o`` must not be the program, one of its
input files, a directory or special file, or an existing file of another kind.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable

from ..errors import UsageError
from ..logfile import MAX_LINE, is_log_file


def check_output(verb: str, path: str, inputs: Iterable[str] = ()) -> bool:
    """Refuse ``path`` as a log to write, with a one-line :class:`UsageError`, unless it
    is new or an rngtrace log; ``inputs`` are files the command reads (the program, its
    arguments, the logs it compares). Returns whether a log is there already."""
    where = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(where):
        raise UsageError(f"{verb}: cannot write the log {path}: no such directory {where}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise UsageError(f"{verb}: cannot write the log {path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{verb}: -o {path} is a directory (give a file name)")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{verb}: -o {path} is not a regular file (a device, pipe or "
                         "socket): a log needs one")
    for other in inputs:
        if os.path.exists(other) and os.path.samefile(path, other):
            raise UsageError(f"{verb}: -o {path} is also the input {other}: it would be "
                             "overwritten (choose another -o)")
    if st.st_size and not is_log_file(path):
        raise UsageError(f"{verb}: -o {path} exists and is not an rngtrace log: not "
                         "replaced (remove it, or choose another -o)")
    return st.st_size > 0


def partial_name(path: str) -> str:
    """The temporary name a log is written under until it is complete."""
    return f"{path}.{os.getpid()}.partial"


def is_finished(path: str) -> bool:
    """Whether the log at ``path`` ends with its end record (every line was written)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - MAX_LINE))
            tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return json.loads(tail).get("t") == "end"
    except (OSError, ValueError, AttributeError):
        return False
