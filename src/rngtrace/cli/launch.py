"""One recorded run for ``compare`` and ``bisect``: ``rngtrace run`` in a side's copy.

The run uses this interpreter (``sys.executable -m rngtrace run``), in its own session
(so that stopping it stops what the program started), with the side's top directory
(and its ``src/``) first on ``PYTHONPATH``, so that the side's packages are the ones
imported. It dies with this process however this process dies (see :mod:`.child`),
and, in a copy of a repository, may not change the working tree (the read-only guard).
Its output is handed over line by line; on any interruption here the whole process
group is stopped: SIGTERM (``rngtrace run`` then finishes its log), SIGKILL after a
grace period, and SIGKILL to whatever is left when the run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from ..errors import RngtraceError
from .checkouts import Side
from .child import PARENT_ENV, guard_env
from .program import Program


@dataclass(frozen=True)
class Settings:
    """How each side is recorded: ``rngtrace run --steps N [--run-on] --level L``."""

    steps: int | None = None
    run_on: bool = False
    level: str = "op"

    def words(self) -> list[str]:
        out = [] if self.steps is None else ["--steps", str(self.steps)]
        out += ["--run-on"] if self.run_on else []
        return out + (["--level", self.level] if self.level != "op" else [])


def record(side: Side, log: str, program: Program, settings: Settings,
           line: Callable[[str], None], protect: str | None = None) -> int:
    """Run ``program`` under ``rngtrace run -o LOG`` in ``side``; each line of its output
    goes to ``line``; its exit code. ``protect``: the working tree the run may not
    change (None for a directory used as it is)."""
    log = os.path.abspath(log)
    cmd = [sys.executable, "-m", "rngtrace", "run", "-o", log, *settings.words(), "--",
           *program.words()]
    env = dict(os.environ)
    first = [side.root] + [p for p in (os.path.join(side.root, "src"),) if os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(first + [p for p in
                                                 [env.get("PYTHONPATH", "")] if p])
    env[PARENT_ENV] = str(os.getpid())
    if protect is not None:
        env.update(guard_env(protect, [log]))
    try:
        proc = subprocess.Popen(cmd, cwd=side.cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", bufsize=1,
                                start_new_session=True)
    except OSError as e:
        raise RngtraceError(f"cannot start {sys.executable}: {e}") from None
    assert proc.stdout is not None
    try:
        for text in proc.stdout:
            line(text.rstrip())
        return proc.wait()
    except BaseException:
        _stop_group(proc)
        raise
    finally:
        proc.stdout.close()
        _kill_group(proc.pid, signal.SIGKILL)  # whatever the program left running


def _stop_group(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """SIGTERM to the run's process group (``rngtrace run`` then finishes its log),
    SIGKILL if it is still there after ``grace`` seconds."""
    _kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, sig)
