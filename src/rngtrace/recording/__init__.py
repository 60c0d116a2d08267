"""Recording: the window around a block of PyTorch code, at op level or module level.

:func:`record` is the entry point; it opens a :class:`~.window.window.Window` of one of
two levels. docs/architecture.md tells the life of a window, its interrupt model, the
rooms below and the words the code uses. The package map, one room a concern:

- ``oplevel/``, the op level (``record()``): :mod:`~.oplevel.recorder` (the
  :class:`Recorder`, what it notes at each draw), :mod:`~.oplevel.mode` (the dispatch
  mode), :mod:`~.oplevel.ops` (which ops draw, their arguments), :mod:`~.oplevel.naming`
  (module paths and state_dict keys, also during construction).
- ``modulelevel/``, the light mode (``record(level="module")``):
  :mod:`~.modulelevel.recorder` (generator states read around module calls),
  :mod:`~.modulelevel.quiet` (learned quiet calls), :mod:`~.modulelevel.paths` (calls
  skipped, names of called modules).
- ``window/``, the window core both levels share: :mod:`~.window.window` (opening,
  stopping, teardown, the one ``nn.Module.__call__`` wrapper, steps, reseeds, errors),
  :mod:`~.window.notes` (the note buffer), :mod:`~.window.sinks` (memory or file),
  :mod:`~.window.claims` (one window per process), :mod:`~.window.header` (the log's
  header), :mod:`~.window.calls` (patching ``nn.Module.__call__``),
  :mod:`~.window.reseed` (seeding functions), :mod:`~.window.distributed` (ranks,
  per-rank file names, :func:`job_path`).
- ``streams/``, Python's and NumPy's generators: :mod:`~.streams.pystreams` (the streams
  of one window), :mod:`~.streams.pypatches` (wrappers on ``random`` and NumPy),
  :mod:`~.streams.workers` (DataLoader workers' parts), :mod:`~.streams.records` (what a
  record says), :mod:`~.streams.digests` (state digests).
- ``compiled/``, ``torch.compile``-d code: :mod:`~.compiled.seedmaps` (Inductor's seed
  maps, the graph running), :mod:`~.compiled.draws` (naming compiled draws),
  :mod:`~.compiled.runs` (what the op level writes while compiled code runs),
  :mod:`~.compiled.loaded` (what of the compiler stack is loaded; keeping it unloaded).
- ``basics/``, used by every room, importing none: :mod:`~.basics.patches` (every change
  to torch's globals, undone together), :mod:`~.basics.imports` (acting when a module
  is imported), :mod:`~.basics.hooks` (global hooks), :mod:`~.basics.frames` (the stack
  walk), :mod:`~.basics.places` (whose code a file holds), :mod:`~.basics.generators`
  (reading generator states), :mod:`~.basics.identity` (storages and model labels).

The levels import the window core, which installs what the streams and compile rooms
patch; the basics serve all. An import-linter contract (``make lint``) keeps it so.
"""

from __future__ import annotations

import os

from ..errors import RecordError
from .modulelevel.recorder import ModuleRecorder
from .oplevel.recorder import Recorder
from .window.distributed import job_path
from .window.sinks import Sink
from .window.window import Window

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
            ``<stem>.rank<R>.rngtrace.jsonl`` (see :mod:`rngtrace.recording.window.distributed`).
        level: ``"op"`` records every random kernel call; ``"module"`` is the light
            mode for whole trainings (see :mod:`rngtrace.recording.modulelevel.recorder`).
        python_rng: also record draws from Python's ``random`` and NumPy
            (:mod:`rngtrace.recording.streams.pystreams`), and every draw of forked DataLoader
            workers (:mod:`rngtrace.recording.streams.workers`); False leaves them alone. At
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
