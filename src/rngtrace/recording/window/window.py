"""The window both recorders share: opening and closing it, the module-call wrapper,
steps, reseeds, usage, internal errors, where draws go.

:class:`Window` is the base of both levels (:class:`~..oplevel.recorder.Recorder` and
:class:`~..modulelevel.recorder.ModuleRecorder`); a level fills in what it installs, how
it reads generators, what it notes at a draw and how it finishes its log. The life of a
window, its interrupt model and the words used here are in docs/architecture.md.

**Interrupt safety.** Opening, closing and recording are safe against an exception or a
``KeyboardInterrupt`` at any line of rngtrace's code: the window's life is one generator
(:meth:`Window._lifetime`) whose every line after the claim runs inside a ``try`` whose
handler undoes everything (:meth:`Window._teardown`, which may run twice: a second run
finishes what an interrupted first one left). Its ``__exit__`` resumes that generator
(through :mod:`contextlib`), so that the first line of rngtrace's code that a closing
window runs is already protected. Afterwards the process can record again, and torch is
as it was: ``nn.Module.__call__``, the seeding functions, the global hooks and the
dispatch mode stack. The one gap left is inside CPython's ``contextlib`` frame, before it
resumes ours (a signal arriving there leaves the window open).

**Module calls from other threads** are noted in ``Log.called`` at both levels (they are
used, and "unused" must never be claimed of a module that ran), but only the window's
thread is recorded: draws (op level) and generator reads (module level). Forked children
(DataLoader workers) inherit the window, which records only their draws there (into the
worker's part, :mod:`..streams.workers`); a window is claimed per process, so a
child may open its own.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from ...errors import RecordError
from ...log import Draw, Event, EventKind, GeneratorInfo, Log
from ..basics import frames
from ..basics.hooks import note_gradients
from ..basics.patches import Patches
from ..compiled.draws import called_inside
from ..compiled.loaded import compiling
from ..compiled.seedmaps import CompileWatch
from ..streams import pypatches, workers
from ..streams.pystreams import PyStreams
from . import notes
from .calls import patch_calls
from .claims import claim_window, release_window
from .distributed import GroupWatch
from .header import header
from .notes import NoteBuffer
from .reseed import describe_call, unchanged_event, watch_reseeds
from .sinks import MemorySink, Sink

#: A window's state: ``"new"`` -> ``"opening"`` (claimed, installing) -> ``"recording"``
#: -> ``"stopped"`` (at the block's end, after ``steps`` optimizer steps, or on an error).
WindowState = Literal["new", "opening", "recording", "stopped"]

#: A level's part of the module-call wrapper: ``hook(module, call, args, kwargs)`` runs
#: the call (``call(module, *args, **kwargs)``) and returns its result; it is called in
#: the window's thread, while recording, after the module is noted as called.
CallHook = Callable[[nn.Module, Callable[..., Any], tuple, "dict[str, Any]"], Any]


def check_steps(steps: int | None) -> int | None:
    """``steps`` as both recorders take it: a positive integer, or None for no limit."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or steps < 1):
        raise RecordError(f"steps must be a positive integer or None, not {steps!r}")
    return steps


class Window:
    """The window opened by :func:`~rngtrace.record`; ``with`` gives its :class:`Log`.

    The base of both levels; its state is a :data:`WindowState`. A level provides
    :meth:`_open` (what it installs, after the claim), :meth:`_call_hook` (its part of
    the module-call wrapper), :meth:`_write` (its notes, described, to the sink),
    :meth:`_quiet` (make its hot paths pass-throughs), :meth:`_flush` (its last records,
    and the draws to patch), :meth:`_generators`, :meth:`_reseeded`, :meth:`_usage`
    and :meth:`_release`.
    """

    _failure = "describe a draw"  # for the warning of an internal error

    def __init__(self, steps: int | None, sink: Sink | None, log: Log,
                 python_rng: bool = True, batch: int | None = None) -> None:
        self.steps_limit = check_steps(steps)
        self.log = log
        self._sink: Sink = sink if sink is not None else MemorySink()
        # what the level noted and has not written yet, and the next draw's index
        self._notes: NoteBuffer[Any] = NoteBuffer(
            self._sink, notes.BATCH if batch is None else batch)
        self._patches = Patches()  # every change to torch's globals (see ..basics.patches)
        self._in_step_hook = False  # stopping from the optimizer step hook (see _on_step)
        self._called: dict[int, Any] = {}  # modules called, by id
        self._graded: dict[int, torch.Tensor] = {}  # parameters seen with a gradient
        self._steps = 0
        self._thread = 0  # the recording thread
        self._pid = 0
        self._state: WindowState = "new"
        self._warned = False
        self._life = contextlib.contextmanager(self._lifetime)()
        # pystreams: Python's random and NumPy, when asked (record(python_rng=...))
        self._py = PyStreams(self._py_draw, self._py_event, self._py_name,
                             lambda: self._steps) if python_rng else None
        self._py_gens: dict[str, GeneratorInfo] = {}
        self._group = GroupWatch()  # the rank's backend, for the header
        # draws of compiled code: Inductor's seed maps, the graph running (docs/compile.md)
        self._compiled = CompileWatch()

    # -- opening and closing -------------------------------------------------------------
    def __enter__(self) -> Log:
        if self._state != "new":
            raise RecordError("a record() window can only be entered once")
        return self._life.__enter__()

    @property
    def __exit__(self) -> Callable[[Any, Any, Any], bool | None]:
        # The with statement looks __exit__ up as it opens; what it calls at the end is
        # contextlib's, which resumes _lifetime inside its try (see the module's doc).
        return self._life.__exit__

    def _lifetime(self) -> Iterator[Log]:
        try:
            self._state = "opening"
            self._pid = os.getpid()
            claim_window(self)
            self._thread = threading.get_ident()
            self.log.meta = header()
            self._group.open(self.log.meta)
            self._open()
            self._state = "recording"
            self._opened()
            yield from self._block()
            self._stop(complete=True)
            self._teardown()
        except BaseException:  # failed to open, or interrupted: leave nothing behind
            self._teardown()
            raise

    def _block(self) -> Iterator[Log]:
        # A function of its own: an exception raised by a tracer at a nested ``try:``
        # line escapes that frame's handlers; from a callee it reaches _lifetime's.
        try:
            yield self.log
        except BaseException:  # the block raised (or was interrupted)
            self._stop(complete=False)
            self._teardown()
            raise

    def _open(self) -> None:
        """Install what every level needs; a level adds its own around this."""
        patch_calls(self._patches, self._wrap)
        watch_reseeds(self._patches, self._on_reseed)
        self._patches.hook(register_optimizer_step_post_hook, self._on_step)
        if self._py is not None:  # pystreams (rolls its own patches back if it fails)
            self._py.install(pypatches.install, workers.install)
        self._compiled.install(self._patches)

    def _opened(self) -> None:
        """The window is recording (the op level pushes its dispatch mode here)."""

    def _stop(self, complete: bool) -> None:
        """End the recording (at the window's end or after ``steps`` optimizer steps)."""
        if self._state != "recording":
            return
        self._state = "stopped"
        try:
            self._unhook()  # torch as it was before the rest of the program goes on
            try:
                patches = self._flush()
            except Exception as e:  # never let a recorder bug break the user's program
                self._internal_error(e)
                patches = {}
            called_inside(self._called)  # compiled models' submodules: traced, not called
            self._usage()
            self.log.generators = {**self._generators(), **self._py_gens}
            self.log.steps = self._steps
            self.log.complete = complete
            self._group.close()
            self._sink.finish(self.log, patches)
        finally:
            self._teardown()

    def _teardown(self) -> None:
        """Undo everything the window did; safe to run again (it finishes the job)."""
        self._state = "stopped"
        self._unhook()
        if self._py is not None:
            self._py.uninstall()
        self._group.close()  # idempotent
        self._sink.close()  # after finish() a no-op; else the file is let go (and unlocked)
        self._release()
        self._called.clear()
        self._graded.clear()
        release_window(self)

    def _unhook(self) -> None:
        self._quiet()
        self._compiled.uninstall()
        self._patches.restore(keep=(self._on_step,) if self._in_step_hook else ())

    def _py_finish(self) -> None:
        """pystreams: the last reads, and the workers' parts (their draws, after ours)."""
        if self._py is not None:
            try:
                self._py_gens = self._py.finish(workers.collect)
            finally:
                self._py.uninstall()

    def _forked(self) -> None:
        """In a forked child: this window is the parent's. Its hooks and reseed wrappers
        pass through there (they check the process); a DataLoader worker's draws still
        go to the worker's part (:mod:`rngtrace.recording.streams.workers`)."""
        self._thread = -1

    # -- what a level provides -------------------------------------------------------------
    def _quiet(self) -> None:
        """Make the hot paths pass-throughs (the window is closing)."""

    def _flush(self) -> dict[int, Draw]:
        """Write the last records; return the draws written earlier to patch."""
        return {}

    def _generators(self) -> dict[str, GeneratorInfo]:
        raise NotImplementedError

    def _reseeded(self, site: str | None, detail: str) -> bool:
        """Record a ``"reseed"`` event for each generator that moved; whether any did."""
        raise NotImplementedError

    def _usage(self) -> None:
        """Fill ``log.called`` and ``log.with_grad``."""

    def _release(self) -> None:
        """Drop the references to the user's objects (the window is over)."""

    def _next_index(self) -> int:
        """The index the next draw will have (events are placed before it)."""
        return self._notes.next

    def _step_here(self) -> bool:
        """Whether an optimizer step in this thread counts (the op level: any thread)."""
        return True

    def _step_boundary(self) -> None:
        """An optimizer step is about to be counted (a boundary for pystreams)."""
        if self._py is not None:
            self._py.step_boundary()

    # pystreams' callbacks (see rngtrace.recording.streams.pystreams)
    def _py_draw(self, fields: dict[str, Any]) -> None:
        """A Python or NumPy draw, written at once after what was noted before it."""
        self._write()  # the records noted before it first: the sink keeps them in order
        step = fields.pop("step", self._steps)
        self._notes.hand([Draw(index=self._notes.next, step=step, **fields)])

    def _write(self) -> None:
        """Describe and hand to the sink what the level noted but has not written."""
        raise NotImplementedError

    def _py_event(self, kind: EventKind, generator: str, site: str | None, detail: str) -> None:
        self._event(Event(kind, generator, self._next_index(), site, detail))

    def _py_name(self, module: Any, root: Any) -> tuple[str | None, str | None, str | None]:
        raise NotImplementedError

    # -- module calls ----------------------------------------------------------------
    def _wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """The one ``nn.Module.__call__`` of a window (the rules it keeps are in
        :mod:`.calls`; a global forward hook would cost 5 us per call). It notes the
        module as called, from every thread of the process (see the module's doc); in the
        window's thread the level's :meth:`_call_hook` runs the call, if it has one;
        otherwise, once Python's streams watch a generator, the call is one of their
        boundaries. Every module call of the process goes through it while recording."""
        win, called, compiling_ = self, self._called, torch.compiler.is_compiling
        get_ident, py, hook = threading.get_ident, self._py, self._call_hook()
        watched, scanned = py.call_filter() if py is not None else ([], set())

        def __call__(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            if compiling_():  # first: dynamo traces this function (see .calls)
                return call(module, *args, **kwargs)
            if hook is not None and win._thread == get_ident():  # see _call_hook
                called[id(module)] = module
                return hook(module, call, args, kwargs)
            if win._state != "recording":
                return call(module, *args, **kwargs)
            called[id(module)] = module
            if hook is None and py is not None and (watched or id(module) not in scanned):
                return py.module_call(module, call, args, kwargs)
            return call(module, *args, **kwargs)

        return __call__

    def _call_hook(self) -> CallHook | None:
        """The level's part of the module-call wrapper (see :data:`CallHook`); None: the
        level does nothing at a module call. The wrapper hands the hook the calls of the
        thread in ``_thread`` without looking at the state (one lookup less on every
        call): a level with a hook keeps ``_thread`` on its thread only while it records
        (the light mode sets it to 0 as it goes quiet, a forked child's window to -1)."""
        return None

    # -- callbacks -------------------------------------------------------------------
    def _live(self) -> bool:
        return self._state == "recording" and os.getpid() == self._pid

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self._live() or not self._step_here():
            return
        try:
            self._step_boundary()
            note_gradients(optimizer, self._graded)
        except Exception as e:  # never break the user's optimizer step
            self._internal_error(e)
        self._steps += 1
        if self.steps_limit is not None and self._steps >= self.steps_limit:
            # torch is iterating over its global step hooks: removing ours now would
            # break that loop for any hook after it ("OrderedDict mutated during
            # iteration"), so it stays registered, a pass-through, until the block ends
            self._in_step_hook = True
            try:
                self._stop(complete=True)
            finally:
                self._in_step_hook = False

    def _on_reseed(self, label: str, scope: str, args: tuple, kwargs: dict,
                   note: str = "") -> None:
        if not self._live() or compiling():  # dynamo's own saves and restores (compile.md)
            return
        try:
            site, _ = frames.user_site(1)
            detail = describe_call(label, args, kwargs) + note
            if not self._reseeded(site, detail):
                cuda = any(name.startswith("default:cuda") for name in self._generators())
                self._event(unchanged_event(scope, cuda, self._next_index(), site, detail))
        except Exception as e:
            self._internal_error(e)

    def _event(self, event: Event) -> None:
        self._sink.event(event)

    def _internal_error(self, e: Exception) -> None:
        self._sink.event(Event("error", "", self._next_index(), None,
                               f"{type(e).__name__}: {e}"))
        if not self._warned:
            self._warned = True
            warnings.warn(f"rngtrace could not {self._failure} ({type(e).__name__}: {e}); "
                          "the program is unaffected, the log has an 'error' event",
                          RuntimeWarning, stacklevel=3)
