"""The light mode, ``record(level="module")``: which module consumed, with no dispatch mode.

The op-level recorder sees every random kernel, at the price of a dispatch mode on
every op (about 2x a small model's step). The light mode sees only module calls: for
the window, ``nn.Module.__call__`` is wrapped (:mod:`rngtrace.recording.calls`; global forward
hooks would send every module call down PyTorch's slow path), the default generators'
states are read at each module call's entry and exit, and a change is charged to the
module whose *own* code ran in between, i.e. the innermost module open (a parent's
entry-to-exit difference includes its children's, so it is never used). Nothing else is
touched, so a whole training run can stay monitored.

What a module-level log holds (``Log.level == "module"``), one :class:`~rngtrace.Draw`
per module call and generator that moved the state, written when the call returns
(children before their parent):

- ``op="module"``, ``module``/``module_type``/``model`` as the op recorder names them
  (state_dict paths in the outermost module called), ``phase="forward"`` (``"backward"``
  for a forward re-run inside backward, as activation checkpointing does);
- ``numel``: on CUDA the Philox offset advance (a count of offset units, 4 per thread
  per kernel, not of values), on CPU 0: an mt19937 state says *whether* it moved, not
  by how much;
- ``state_before``/``state_after``: the state before the call's first consumption and
  after its last (digests on CPU, ``"SEED:OFFSET"`` on CUDA); ``site``/``code``: the
  user line that called the module;
- consumption between module calls (a DataLoader's ``random_``/``randperm``, a
  ``torch.rand`` in the training loop, dropout in a loss written as a function) is not
  an error but ordinary use, so it is recorded as an *outside* record: the same
  ``op="module"`` with ``module=None`` and ``phase="other"``, one per stretch of code
  between two module calls (or up to an optimizer step, or the window's end);
- ``Log.called`` lists the modules called in the window, ``with_grad`` stays None.

Only the default generators are read (CPU, and every CUDA device initialised by the
program, looked at again at each top-level module call); draws from explicit
``torch.Generator`` objects are invisible here. Reseeds through ``torch.manual_seed`` and
friends are recorded as ``"reseed"`` events, as in the op recorder; consumption since the
previous module boundary is then merged into the reseed and not charged. A CUDA state that
moves backwards without a reseed the window saw is a ``"gap"`` event. Module calls from
other threads and processes (DataLoader workers inherit the wrapper) are ignored; the
consumption of another thread is charged to whatever the recording thread is running.
A ``torch.compile``-d module is charged as a whole: the calls inside its graph are not
Python calls any more. Which module calls are not read, and how called modules are
named, is in :mod:`rngtrace.recording.module_paths`.

Example::

    >>> import torch, rngtrace
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    >>> with rngtrace.record(level="module") as log:
    ...     y = net(torch.ones(2, 4))
    >>> [(d.module, d.module_type, d.numel) for d in log.draws]
    [('1', 'Dropout', 0)]
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from ..log import Draw, Event, GeneratorInfo, Log
from . import frames
from . import window as _rec
from .calls import CallPatch
from .distributed import GroupWatch
from .generators import raw_state, state_text
from .hooks import Hooks, note_gradients
from .module_paths import DROPOUT, PURE, Paths
from .pystreams import PyStreams
from .reseed import ReseedWatch, describe_call, unchanged_event
from .window import default_generators

_BACKWARDS = "CUDA generator state moved backwards or was reseeded (not by a call the " \
             "window saw: a restored state, Generator.manual_seed)"


@dataclass(slots=True)
class _Gen:
    """One default generator, with the last state read (bytes on CPU, (seed, offset) on
    CUDA, both cheap to compare)."""

    name: str
    device: str
    generator: Any
    cuda: bool
    last: Any = None
    memo: tuple[Any, str] | None = None  # one raw state and its display form
    first: str | None = None
    seed: int | None = None

    def read(self) -> Any:
        g = self.generator
        if self.cuda:
            return g.initial_seed(), g.get_offset()
        return raw_state(g)

    def show(self, raw: Any) -> str:
        """The display form of a state read (a digest on CPU); consecutive records share
        their states (one's after is the next one's before): each is shown once."""
        memo = self.memo
        if memo is not None and memo[0] is raw:
            return memo[1]
        text = f"{raw[0]}:{raw[1]}" if self.cuda else state_text(raw, self.device)
        self.memo = (raw, text)
        return text


@dataclass(slots=True)
class _Use:
    """What one open module call consumed from one generator so far."""

    gen: _Gen
    before: Any  # raw states, shown when the records are written
    after: Any
    delta: int = 0


# When a module call returns, what it consumed is noted as one of these; they are turned
# into Draws and handed to the sink together, at each optimizer step (or every _BATCH
# records, before an event, at the window's end): the digests and the Draws are made in
# one warm loop instead of one at a time between the model's kernels.
_Note = tuple  # (index, gen, module, root, module_type, phase, step, use, site, code)
_BATCH = 256


class ModuleRecorder:
    """The window opened by ``record(level="module")``; ``with`` gives its :class:`Log`."""

    def __init__(self, steps: int | None = None, sink: _rec.Sink | None = None,
                 python_rng: bool = True) -> None:
        self.steps_limit = _rec.check_steps(steps)
        self.log = Log(level="module")
        self._group = GroupWatch()  # the rank's backend, for the header
        self._sink: _rec.Sink = sink if sink is not None else _rec.MemorySink()
        self._gens: list[_Gen] = []
        self._cuda_seen = 0
        self._stack: list[nn.Module] = []
        self._uses: dict[int, list[_Use]] = {}  # depth in _stack -> consumption so far
        self._notes: list[_Note] = []  # consumption of calls returned, not yet written
        self._called: dict[int, nn.Module] = {}
        self._graded: dict[int, torch.Tensor] = {}  # parameters seen with a gradient
        self._paths = Paths()
        self._reseed = ReseedWatch(self._on_reseed)
        self._hooks = Hooks()
        self._calls = CallPatch(self._wrap, on_fork=self._forked)
        self._count = 0
        self._steps = 0
        self._thread = 0  # the recording thread; 0 outside the window, -1 in a forked child
        self._pid = 0
        self._state = "new"  # new -> recording -> stopped
        self._warned = False
        # pystreams: Python's random and NumPy, when asked (record(python_rng=...))
        self._py = PyStreams(self._py_draw, self._py_event, self._py_name,
                             lambda: self._steps) if python_rng else None

    # -- window --------------------------------------------------------------------
    def __enter__(self) -> Log:
        _rec.claim_window(self, self._state)
        try:
            self._thread = threading.get_ident()
            self._pid = os.getpid()
            self.log.meta = _rec.header()
            self._group.open(self.log.meta)
            self._add_gen("default:cpu", "cpu", torch.default_generator, cuda=False)
            self._check_cuda()
            self._sink.start(self.log, default_generators())
            self._hooks.add(nn.modules.module.register_module_module_registration_hook(
                self._on_module))
            self._hooks.add(register_optimizer_step_post_hook(self._on_step))
            self._calls.install()
            self._reseed.install()
            if self._py is not None:  # pystreams
                self._py.install()
        except BaseException:
            self._uninstall()
            raise
        self._state = "recording"
        return self.log

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._stop(complete=exc_type is None)

    def _uninstall(self) -> None:
        self._group.close()  # idempotent: also when __enter__ failed
        self._thread = 0  # the module-call wrapper is a pass-through from now on
        if self._py is not None:  # pystreams
            self._py.uninstall()
        self._calls.uninstall()
        self._hooks.remove()
        self._reseed.uninstall()
        _rec.release_window(self)

    def _stop(self, complete: bool) -> None:
        if self._state != "recording":
            return
        self._state = "stopped"
        try:
            py_gens = {}
            try:
                self._boundary()
                while self._stack:  # closed inside a module call: charge what is open
                    self._close(len(self._stack) - 1)
                    self._stack.pop()
                self._write()
                if self._py is not None:  # pystreams: the last reads, the workers' parts
                    py_gens = self._py.finish()
            except Exception as e:
                self._internal_error(e)
            self._usage()
            self.log.generators = {g.name: GeneratorInfo(g.name, g.device, g.seed, g.first)
                                   for g in self._gens}
            self.log.generators.update(py_gens)
            self.log.steps = self._steps
            self.log.complete = complete
            self._group.close()
            self._sink.finish(self.log, {})
        finally:
            self._uninstall()
            self._uses.clear()
            self._notes.clear()
            self._called.clear()
            self._graded.clear()
            self._paths.clear()
            for g in self._gens:
                g.generator = None

    # -- generators ------------------------------------------------------------------
    def _add_gen(self, name: str, device: str, generator: Any, cuda: bool) -> None:
        g = _Gen(name, device, generator, cuda)
        g.last = g.read()
        g.first = g.show(g.last)
        g.seed = generator.initial_seed()
        self._gens.append(g)

    def _check_cuda(self) -> None:
        """Add the CUDA default generators once the program has initialised CUDA."""
        if self._cuda_seen or not torch.cuda.is_initialized():
            return
        self._cuda_seen = torch.cuda.device_count()
        for i in range(self._cuda_seen):
            self._add_gen(f"default:cuda:{i}", f"cuda:{i}", torch.cuda.default_generators[i],
                          cuda=True)

    # -- module calls (the hot path) -------------------------------------------------------
    def _wrap(self, call: Any) -> Any:
        """The ``nn.Module.__call__`` of the window (see :mod:`rngtrace.recording.calls`)."""
        rec, called, stack = self, self._called, self._stack
        get_ident, compiling = threading.get_ident, torch.compiler.is_compiling
        pure, dropout = PURE, DROPOUT
        py = self._py

        def __call__(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            if compiling() or rec._thread != get_ident():  # dynamo: see _calls
                return call(module, *args, **kwargs)
            called[id(module)] = module
            kind = type(module)
            if stack and (kind in pure or (kind in dropout and not module.training)) \
                    and not (module._forward_pre_hooks or module._forward_hooks):
                return call(module, *args, **kwargs)  # its own code cannot draw
            depth = rec._enter(module)
            try:
                if py is not None:  # pystreams: module calls are boundaries
                    return py.module_call(module, call, args, kwargs)
                return call(module, *args, **kwargs)
            finally:
                rec._leave(module, depth)

        return __call__

    def _enter(self, module: nn.Module) -> int:
        """A read module call starts: charge what ran since the last boundary; its depth."""
        stack = self._stack
        try:
            if not stack:
                self._check_cuda()
                self._paths.note_root(module)
            self._boundary()
        except Exception as e:  # never let a recorder bug break the user's program
            self._internal_error(e)
            return -1
        stack.append(module)
        return len(stack) - 1

    def _leave(self, module: nn.Module, depth: int) -> None:
        """The call entered at ``depth`` returns (or raises): charge and close it."""
        if depth < 0 or self._thread != threading.get_ident():
            return  # not entered, or the window closed meanwhile
        stack = self._stack
        try:
            self._boundary()
            while len(stack) > depth:
                if self._uses:
                    self._close(len(stack) - 1)
                stack.pop()
        except Exception as e:
            self._internal_error(e)

    def _boundary(self) -> None:
        """Read the states; charge any change to the innermost open call (or outside)."""
        for g in self._gens:
            raw = g.read()
            if raw != g.last:
                self._charge(g, raw)

    def _charge(self, g: _Gen, raw: Any) -> None:
        before, g.last = g.last, raw
        delta = 0
        if g.cuda:
            if raw[0] != before[0] or raw[1] < before[1]:
                self._event(Event("gap", g.name, self._count, None, _BACKWARDS))
                return
            delta = raw[1] - before[1]
        depth = len(self._stack) - 1
        if depth < 0:  # between module calls: an outside record of its own
            self._notes.append((self._count, g, None, None, None, "other", self._steps,
                                _Use(g, before, raw, delta), None, None))
            self._count += 1
            return
        uses = self._uses.setdefault(depth, [])
        for u in uses:
            if u.gen is g:
                u.after = raw
                u.delta += delta
                return
        uses.append(_Use(g, before, raw, delta))

    def _close(self, depth: int) -> None:
        """The call at ``depth`` returns: note what it consumed (see ``_Note``)."""
        uses = self._uses.pop(depth, None)
        if not uses:
            return
        stack = self._stack
        module = stack[depth]
        site, code = frames.user_site(1)
        phase = "backward" if torch._C._current_autograd_node() is not None else "forward"
        kind = type(module).__name__
        for u in uses:
            self._notes.append((self._count, u.gen, module, stack[0], kind, phase,
                                self._steps, u, site, code))
            self._count += 1
        if len(self._notes) >= _BATCH:
            self._write()

    def _write(self) -> None:
        """Hand the noted records to the sink, as Draws, in order."""
        if not self._notes:
            return
        notes, self._notes = self._notes, []
        resolve = self._paths.resolve
        draws = []
        for index, g, module, root, kind, phase, step, u, site, code in notes:
            model, path = resolve(module, root) if module is not None else (None, None)
            # positional: a third cheaper than keywords (fields in Draw's order)
            draws.append(Draw(index, "module", path, kind, None, phase, step, (), "",
                              g.device, u.delta, {}, g.name, g.show(u.before),
                              g.show(u.after), True, site, code, None, model))
        self._sink.draws(draws)

    def _event(self, event: Event) -> None:
        self._write()  # the records before it first: the sink keeps them in order
        self._sink.event(event)

    # -- pystreams: records of Python and NumPy draws (recording.pystreams) ----------
    def _py_draw(self, fields: dict[str, Any]) -> None:
        self._write()  # the records noted before it first: the sink keeps them in order
        step = fields.pop("step", self._steps)
        self._sink.draw(Draw(index=self._count, step=step, **fields))
        self._count += 1

    def _py_event(self, kind: str, generator: str, site: str | None, detail: str) -> None:
        self._event(Event(kind, generator, self._count, site, detail))

    def _py_name(self, module: Any, root: Any) -> tuple[str | None, str | None, str | None]:
        stack = self._stack
        model, path = self._paths.resolve(module, stack[0] if stack else root)
        return model, path, type(module).__name__

    # -- other callbacks -----------------------------------------------------------------
    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if threading.get_ident() != self._thread or self._state != "recording":
            return
        try:
            self._boundary()  # what the step and the code before it consumed is this step's
            if self._py is not None:  # pystreams: a step is a boundary
                self._py.boundary(None)
            self._write()
            note_gradients(optimizer, self._graded)
        except Exception as e:  # never break the user's optimizer step
            self._internal_error(e)
        self._steps += 1
        if self.steps_limit is not None and self._steps >= self.steps_limit:
            self._stop(complete=True)

    def _set_paused(self, paused: bool) -> None:
        """For benchmarks: pause recording (module calls and optimizer steps pass
        through, with the wrapper still in place) or resume it, in the window's thread
        and between module calls; what runs while paused is charged to nothing.
        ``make bench`` pairs steps with the window paused and resumed, which cancels the
        drift of a shared machine."""
        if self._state == "recording":
            self._thread = 0 if paused else threading.get_ident()

    def _forked(self) -> None:
        self._thread = -1  # a DataLoader worker inherits the wrapper: not recorded

    def _on_module(self, parent: nn.Module, name: str, child: nn.Module | None) -> None:
        self._paths.changed()

    def _on_reseed(self, label: str, scope: str, args: tuple, kwargs: dict) -> None:
        if self._state != "recording" or os.getpid() != self._pid:
            return
        try:
            site, _ = frames.user_site(1)
            detail = describe_call(label, args, kwargs)
            self._check_cuda()
            changed = False
            for g in self._gens:
                raw = g.read()
                if raw != g.last:
                    g.last = raw
                    self._event(Event("reseed", g.name, self._count, site, detail))
                    changed = True
            if not changed:
                self._event(unchanged_event(scope, bool(self._cuda_seen), self._count, site,
                                            detail))
        except Exception as e:
            self._internal_error(e)

    def _usage(self) -> None:
        """Name the modules called and the parameters that got a gradient (the op
        recorder's ``called``/``with_grad``), from the models seen."""
        called: dict[tuple[str | None, str], None] = {}
        for m in self._called.values():
            model, path = self._paths.resolve(m, None)
            if model is not None:
                called[(model, path)] = None
        keys = self._paths.parameter_keys()
        for p in keys.values():
            if p[2].grad is not None:
                self._graded[id(p[2])] = p[2]
        graded: list[tuple[str | None, str]] = [
            (keys[i][0], keys[i][1]) for i in self._graded if i in keys]
        self.log.called = list(called) if called else None
        self.log.with_grad = graded or None

    def _internal_error(self, e: Exception) -> None:
        self._sink.event(Event("error", "", self._count, None, f"{type(e).__name__}: {e}"))
        if not self._warned:
            self._warned = True
            warnings.warn(f"rngtrace could not follow a module call ({type(e).__name__}: "
                          f"{e}); the program is unaffected, the log has an 'error' event",
                          RuntimeWarning, stacklevel=3)
