"""Which files rngtrace reads and writes: regular files only, and never a foreign one.

The rules, for every file rngtrace writes (a log, a picture):

- a path that exists must be a regular file (a FIFO would block, a device such as
  ``/dev/full`` would swallow the log) and either empty or a file rngtrace wrote (its
  first line is sniffed): a script, a checkpoint or another tool's JSON is never
  replaced, whatever its name;
- nothing is truncated before the writer owns the window; whole files are written to a
  temporary name beside the target and renamed into place.

Readers open with ``O_NONBLOCK`` after checking the file is regular, so a FIFO or a
device given as a log is refused at once instead of blocking or reading forever.

Example::

    >>> import os, tempfile
    >>> from rngtrace.logfile.files import check_target
    >>> script = os.path.join(tempfile.mkdtemp(), "train.py")
    >>> with open(script, "w") as f:
    ...     _ = f.write("print('hello')\\n")
    >>> check_target(script, "the log")
    Traceback (most recent call last):
    ...
    rngtrace.errors.RngtraceError: cannot write the log .../train.py: it exists and is not an ...
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

from ..errors import RngtraceError
from .format import MARKER, MAX_LINE

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def kind_of(mode: int) -> str | None:
    """What a non-regular file is (``"a FIFO"``...), None for a regular file."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return None if stat.S_ISREG(mode) else "a special file"


def open_regular(path: str, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that never blocks on a FIFO and refuses anything but a regular file
    (``OSError`` with ``EINVAL`` and a message saying what it is)."""
    fd = os.open(path, flags | _NONBLOCK | _CLOEXEC, mode)
    what = kind_of(os.fstat(fd).st_mode)
    if what is not None:
        os.close(fd)
        raise OSError(22, f"{what}, not a regular file")
    return fd


def first_line(path: str) -> bytes:
    """The first line of a regular file (at most :data:`MAX_LINE` bytes), without blocking."""
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.readline(MAX_LINE + 1)


def is_log_line(raw: bytes) -> bool:
    """Whether ``raw`` is the header line of an rngtrace log (of any version: its marker
    holds an integer)."""
    if not raw.lstrip().startswith(b"{"):
        return False
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return type(rec) is dict and isinstance(rec.get(MARKER), int)


def is_log_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file that starts with an rngtrace log's header line
    (nothing after it is read).

    >>> import os, tempfile, rngtrace
    >>> path = os.path.join(tempfile.mkdtemp(), "x.rngtrace.jsonl")
    >>> rngtrace.save(rngtrace.Log(), path)
    >>> is_log_file(path), is_log_file(os.devnull)
    (True, False)
    """
    try:
        return is_log_line(first_line(os.fspath(path)))
    except OSError:
        return False


def check_target(path: str, what: str, sniff: Callable[[bytes], bool] = is_log_line,
                 error: type[RngtraceError] = RngtraceError,
                 kind: str = "an rngtrace log") -> None:
    """Refuse a path rngtrace must not write ``what`` (e.g. ``"the log"``) to.

    A path that does not exist must be creatable (its directory writable); one that
    exists must be a regular file that is empty or passes ``sniff`` on its first line
    (by default: an rngtrace log; ``kind`` names what ``sniff`` accepts), and writable.
    Raises ``error`` (a subclass of :class:`~rngtrace.RngtraceError`) with one line
    saying why; writes nothing.
    """
    def refuse(why: str) -> None:
        raise error(f"cannot write {what} {path}: {why}")

    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            refuse("no such directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            refuse("permission denied")
        return
    except OSError as e:
        return refuse(e.strerror or str(e))
    special = kind_of(st.st_mode)
    if special is not None:
        refuse(f"it is {special}, not a regular file")
    if not os.access(path, os.W_OK):
        refuse("permission denied")
    if st.st_size == 0:
        return
    try:
        head = first_line(path)
    except OSError as e:
        return refuse(e.strerror or str(e))
    if not sniff(head):
        refuse(("it is an rngtrace log" if is_log_line(head) else
                f"it exists and is not {kind}")
               + " (rngtrace never writes over other files; choose another path)")


def temp_beside(path: str) -> tuple[int, str]:
    """A new file in ``path``'s directory (same file system, so renaming it onto
    ``path`` is atomic): its descriptor and name. Never an existing file."""
    for n in range(100):
        tmp = f"{path}.tmp{os.getpid()}" + (f".{n}" if n else "")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(17, "no free temporary name", path)


def write_replacing(path: str, data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write a whole file: to a temporary name beside ``path``, then renamed onto it, so
    that ``path`` is either as it was or complete. ``data`` is the bytes, or a function
    that writes to the (binary) file. Raises ``OSError`` (the temporary file removed)."""
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
