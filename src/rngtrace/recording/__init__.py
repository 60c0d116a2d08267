"""Recording: the window around a block of PyTorch code, at op level or module level.

:func:`record` is the entry point. The op level (:mod:`.oplevel`) sees every random
kernel through a dispatch mode (:mod:`.mode`, :mod:`.ops`); the module level
(:mod:`.modulelevel`) reads generator states around module calls. Both are a
:class:`~.window.Window` (claiming, opening and closing, steps, reseeds, usage, errors),
and share the module-call wrapper (:mod:`.calls`), the global hooks (:mod:`.hooks`),
reseed watching (:mod:`.reseed`), every change to torch's globals (:mod:`.patches`),
generator reads (:mod:`.generators`), the stack walk (:mod:`.frames`) and the naming of
modules and parameters (:mod:`.naming`).
"""

from __future__ import annotations

import os

from ..errors import RecordError
from .modulelevel.recorder import ModuleRecorder
from .oplevel.recorder import Recorder
from .window.distributed import job_path
from .window.window import Sink, Window

__all__ = ["Recorder", "Window", "job_path", "record"]


def record(
    steps: int | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    level: str = "op",
    python_rng: bool = True,
) -> Window:
    """Record every random kernel call made in a block, and who made it.

    Returns a context manager whose ``with`` target is a :class:`~rngtrace.Log`,
    filled when the window closes: at the end of the block, or after ``steps``
    optimizer steps, when the recording mode is removed and the rest of the block runs
    at full speed.

    The recorder is transparent: it never draws or seeds, so parameters, outputs,
    gradients and generator states are bit-identical to a run without it. An exception
    in the block propagates unchanged; the log keeps what was drawn and is marked
    ``complete=False``. Windows cannot be nested (one per process: a forked DataLoader
    worker may open its own). Opening, closing and recording are safe against Ctrl-C:
    after a ``KeyboardInterrupt`` torch is as it was and a new window can open.

    Draws are seen at the dispatcher (a ``TorchDispatchMode``), so only the thread that
    opened the window is traced; draws made by other threads show as ``"gap"`` events
    when they move a generator the window uses. Forked DataLoader workers record their
    own draws, merged into the log with ``Draw.worker`` (see ``python_rng``).

    Example::

        >>> import torch, rngtrace
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> with rngtrace.record() as log:
        ...     layer = torch.nn.Linear(4, 2)
        >>> [(d.op, d.target) for d in log.draws]
        [('aten::uniform_', 'weight'), ('aten::uniform_', 'bias')]

    Args:
        steps: stop recording after this many optimizer steps.
        path: stream the log to this file as it is recorded (see :mod:`rngtrace.logfile`).
            In a torch.distributed job each rank writes its own file,
            ``<stem>.rank<R>.rngtrace.jsonl`` (see :mod:`rngtrace.recording.distributed`).
        level: ``"op"`` records every random kernel call; ``"module"`` is the light
            mode for whole trainings (see :mod:`rngtrace.recording.modulelevel`).
        python_rng: also record draws from Python's ``random`` and NumPy
            (:mod:`rngtrace.recording.pystreams`), and every draw of forked DataLoader
            workers (:mod:`rngtrace.recording.workers`); False leaves them alone. At
            module level too (Python and NumPy records are per call there as well).
    """
    if level not in ("op", "module"):
        raise RecordError(f"level must be 'op' or 'module', not {level!r}")
    sink: Sink | None = None
    if path is not None:
        from ..logfile import FileSink

        sink = FileSink(job_path(path))
    if level == "module":
        return ModuleRecorder(steps=steps, sink=sink, python_rng=python_rng)
    return Recorder(steps=steps, sink=sink, python_rng=python_rng)
