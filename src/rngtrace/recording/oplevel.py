"""The op level: every random kernel call seen through a dispatch mode, named and logged."""

from __future__ import annotations

import dataclasses
import threading
import warnings
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ..log import Draw, Event, Log
from . import frames, ops
from .calls import CallPatch
from .distributed import GroupWatch, shard_fields
from .generators import Generators, Slot
from .hooks import Hooks, note_gradients
from .mode import RecordingMode
from .naming import OUTSIDE, Names, Pending, Resolved
from .pystreams import PyStreams
from .reseed import ReseedWatch, describe_call, unchanged_event
from .window import (
    MemorySink,
    Sink,
    check_steps,
    claim_window,
    default_generators,
    header,
    release_window,
)

_GAP = "state changed with no traced draw (another thread, an untraced extension, or a " \
       "restored state)"


class Recorder:
    """The window opened by :func:`record`; ``with`` gives its :class:`Log`."""

    def __init__(self, steps: int | None = None, sink: Sink | None = None,
                 python_rng: bool = True) -> None:
        self.steps_limit = check_steps(steps)
        self.log = Log()
        self._sink: Sink = sink if sink is not None else MemorySink()
        self._gens = Generators()
        self._names = Names(on_claim=self._on_claim)
        self._reseed = ReseedWatch(self._on_reseed)
        self._mode = RecordingMode(self)
        self._pending: dict[int, Pending] = {}  # draws whose names are known at the end
        self._count = 0
        self._steps = 0
        self._hooks = Hooks()  # optimizer steps
        self._calls = CallPatch(self._wrap)  # which modules are called
        self._called: dict[int, Any] = {}  # modules called in forward, by id
        self._graded: dict[int, torch.Tensor] = {}  # parameters seen with a gradient
        self._thread = 0
        self._state = "new"  # new -> recording -> stopped
        self._popped = False
        self._warned = False
        # pystreams: Python's random and NumPy, when asked (record(python_rng=...))
        self._py = PyStreams(self._py_draw, self._py_event, self._py_name,
                             lambda: self._steps) if python_rng else None
        self._group = GroupWatch()  # the rank's backend, for the header

    # -- window --------------------------------------------------------------------
    def __enter__(self) -> Log:
        claim_window(self, self._state)
        self._thread = threading.get_ident()
        self.log.meta = header()
        self._group.open(self.log.meta)
        self._sink.start(self.log, default_generators())
        self._gens.snapshot_defaults()
        self._names.install()
        self._reseed.install()
        self._hooks.add(register_optimizer_step_post_hook(self._on_step))
        self._calls.install()
        if self._py is not None:  # pystreams (rolls its own patches back if it fails)
            try:
                self._py.install()
            except BaseException:
                self._calls.uninstall()
                self._hooks.remove()
                self._reseed.uninstall()
                self._names.uninstall()
                release_window(self)
                raise
        self._state = "recording"
        self._mode.__enter__()
        return self.log

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._stop(complete=exc_type is None)
        finally:
            if not self._popped:
                self._pop()

    def _pop(self) -> None:
        self._mode.__exit__(None, None, None)
        self._popped = True

    def _wrap(self, call: Any) -> Any:
        """The ``nn.Module.__call__`` of the window: notes the module, then calls it (a
        global forward hook would cost 5 us per call, see :mod:`rngtrace.recording.calls`)."""
        rec, called, compiling = self, self._called, torch.compiler.is_compiling
        py = self._py

        def __call__(module: Any, *args: Any, **kwargs: Any) -> Any:
            if not compiling() and rec._state == "recording":
                called[id(module)] = module
                if py is not None:  # pystreams: module calls are boundaries
                    return py.module_call(module, call, args, kwargs)
            return call(module, *args, **kwargs)

        return __call__

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._py is not None and self._py.active():  # pystreams: a step is a boundary
            self._py._guard(self._py.boundary, None)
        note_gradients(optimizer, self._graded)
        self._steps += 1
        if self.steps_limit is not None and self._steps >= self.steps_limit:
            self._stop(complete=True)

    def _stop(self, complete: bool) -> None:
        if self._state != "recording":
            return
        self._state = "stopped"
        self._mode.active = False
        if threading.get_ident() == self._thread and _get_current_dispatch_mode() is self._mode:
            self._pop()  # the rest of the run goes at full speed
        self._hooks.remove()
        self._calls.uninstall()
        self._reseed.uninstall()
        self._names.uninstall()
        try:
            if self._py is not None:  # pystreams: the last reads, the workers' parts
                try:
                    py_gens = self._py.finish()
                finally:
                    self._py.uninstall()
            self._sweep("gap")  # moved since the last draw: noticed as the window closes
            patches = {i: self._finalise(p) for i, p in sorted(self._pending.items())}
            self.log.generators = self._gens.infos()
            if self._py is not None:
                self.log.generators.update(py_gens)
            self.log.steps = self._steps
            self._usage()
            self.log.complete = complete
            self._group.close()
            self._sink.finish(self.log, patches)
        finally:
            self._pending.clear()
            self._called.clear()
            self._graded.clear()
            self._names.clear()
            self._gens.release()
            release_window(self)

    def _usage(self) -> None:
        """Name the modules called in forward and the parameters that got a gradient."""
        if self._called:
            self.log.called = self._names.module_names(self._called.values())
        self._graded.update(self._names.graded_parameters())
        if self._graded:
            self.log.with_grad = self._names.tensor_names(self._graded.values())

    # -- draws ---------------------------------------------------------------------
    def on_random(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict) -> Any:
        try:
            slot, before = self._before(info, args, kwargs)
        except Exception as e:  # never let a recorder bug break the user's program
            self._internal_error(e)
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        try:
            self._after(func, info, args, kwargs, out, slot, before)
        except Exception as e:
            self._internal_error(e)
        return out

    def _before(self, info: ops.OpInfo, args: tuple, kwargs: dict) -> tuple[Slot, Any]:
        gen = ops.generator_arg(info, args, kwargs)
        slot = self._gens.explicit(gen) if gen is not None else self._gens.default(
            call_device(info, args, kwargs))
        before = slot.read()
        if slot.last_raw is not None and before[0] != slot.last_raw:
            self._event(Event("gap", slot.name, self._count, None, _GAP))
        return slot, before

    def _after(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict, out: Any,
               slot: Slot, before: tuple[bytes | None, str | None]) -> None:
        after = slot.read()
        slot.last_raw, slot.last_text = after
        consumed = before[0] != after[0] if slot.generator is not None else (
            slot.device != "meta")
        result = result_tensor(info, args, kwargs, out)
        stack = frames.describe_stack(2, self._names.known)
        if torch._C._current_autograd_node() is not None:
            phase = "backward"
        else:
            phase = stack.phase or "other"
        index = self._count
        self._count += 1
        pending = Pending(stack.module, index=index)
        if stack.outermost is not None:
            self._names.note_root(stack.outermost)
        if phase != "backward":
            self._names.claim(result, pending, may_wait=phase != "forward")
        if pending.target is not None and phase == "other":
            phase = "init"
        resolved = None if stack.building else self._names.now(pending.module, pending)
        final = resolved is not None
        if resolved is None:
            resolved = _provisional(pending)
        shape = tuple(result.shape) if result is not None else ()
        local_shape, local_offset, placement = shard_fields(result)
        draw = Draw(
            index=index, op=info.name, module=resolved.module,
            module_type=resolved.module_type, target=resolved.target, phase=phase,
            step=self._steps, shape=shape,
            dtype=str(result.dtype).removeprefix("torch.") if result is not None else "",
            device=str(result.device) if result is not None else slot.device,
            numel=result.numel() if result is not None else 0,
            args=ops.scalar_args(info, args, kwargs), generator=slot.name,
            state_before=before[1], state_after=after[1], consumed=consumed,
            site=stack.site, code=stack.code,
            api=stack.api or ops.api_name(info.name),
            model=resolved.model, discarded=resolved.discarded,
            local_shape=local_shape, local_offset=local_offset, placement=placement,
        )
        pending.draw = draw
        if not final:
            self._pending[index] = pending
        self._sink.draw(draw)

    def _on_claim(self, pending: Pending) -> None:
        """A tensor drawn outside any module was registered as a parameter or buffer."""
        self._pending.setdefault(pending.index, pending)

    def _finalise(self, pending: Pending) -> Draw:
        r = self._names.finish(pending)
        d = pending.draw
        phase = "init" if r.target is not None and d.phase == "other" else d.phase
        return dataclasses.replace(d, module=r.module, module_type=r.module_type,
                                   target=r.target, model=r.model, discarded=r.discarded,
                                   phase=phase, copied=r.copied)

    # -- pystreams: records of Python and NumPy draws (recording.pystreams) ----------
    def _py_draw(self, fields: dict[str, Any]) -> None:
        step = fields.pop("step", self._steps)
        self._sink.draw(Draw(index=self._count, step=step, **fields))
        self._count += 1

    def on_worker_random(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict) -> Any:
        """A random kernel in a forked DataLoader worker: into the worker's part, with the
        generator, the states and the Dataset method or module that drew."""
        py = self._py
        part = py.worker if py is not None else None
        if py is None or part is None or not part.active():
            return func(*args, **kwargs)
        try:
            slot, before = self._before(info, args, kwargs)
        except Exception:  # never let a recorder bug break the user's program
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        try:
            after = slot.read()
            slot.last_raw, slot.last_text = after
            result = result_tensor(info, args, kwargs, out)
            owner = py.owner()
            site, code = frames.user_site(1)
            part.draw(py.fields(
                owner, op=info.name, generator=slot.name, state_before=before[1],
                state_after=after[1], numel=result.numel() if result is not None else 0,
                shape=tuple(result.shape) if result is not None else (),
                dtype=str(result.dtype).removeprefix("torch.") if result is not None else "",
                args=ops.scalar_args(info, args, kwargs), site=site, code=code,
                api=ops.api_name(info.name)))
        except Exception:
            pass  # a worker has no log to put an error event in
        return out

    def _py_event(self, kind: str, generator: str, site: str | None, detail: str) -> None:
        self._event(Event(kind, generator, self._count, site, detail))

    def _py_name(self, module: Any, root: Any) -> tuple[str | None, str | None, str | None]:
        if root is not None:
            self._names.note_root(root)
        pending = Pending(module)
        r = self._names.now(module, pending) or _provisional(pending)
        return r.model, r.module, r.module_type

    # -- events ------------------------------------------------------------------
    def _event(self, event: Event) -> None:
        self._sink.event(event)

    def _sweep(self, kind: str, site: str | None = None, detail: str = _GAP) -> bool:
        """Compare every generator with the state the recorder last knew, record a
        ``kind`` event for each that moved, and remember the new states."""
        moved = False
        for slot in list(self._gens.slots.values()):
            raw, text = slot.read()
            if slot.last_raw is not None and raw != slot.last_raw:
                self._event(Event(kind, slot.name, self._count, site, detail))
                moved = True
            slot.last_raw, slot.last_text = raw, text
        return moved

    def _on_reseed(self, label: str, scope: str, args: tuple, kwargs: dict) -> None:
        if self._state != "recording":
            return
        try:
            site, _ = frames.user_site(1)
            detail = describe_call(label, args, kwargs)
            self._gens.snapshot_defaults()
            if not self._sweep("reseed", site, detail):
                self._event(unchanged_event(scope, torch.cuda.is_initialized(),
                                            self._count, site, detail))
        except Exception as e:
            self._internal_error(e)

    def _internal_error(self, e: Exception) -> None:
        self._event(Event("error", "", self._count, None, f"{type(e).__name__}: {e}"))
        if not self._warned:
            self._warned = True
            warnings.warn(f"rngtrace could not describe a draw ({type(e).__name__}: {e}); "
                          "the program is unaffected, the log has an 'error' event",
                          RuntimeWarning, stacklevel=3)


def _provisional(p: Pending) -> Resolved:
    """Best names before the model is complete, used if the run dies before the end."""
    m = p.target.owner if p.target is not None else p.module
    if m is None:
        return OUTSIDE
    kind = type(m).__name__
    target = f"<{kind}>.{p.target.name}" if p.target is not None else None
    return Resolved(None, f"<{kind}>", kind, target, False)


def call_device(info: ops.OpInfo, args: tuple, kwargs: dict) -> torch.device:
    """The device whose default generator a call without a generator uses."""
    for a in args:
        if isinstance(a, torch.Tensor):
            return a.device
        if isinstance(a, list | tuple) and a and isinstance(a[0], torch.Tensor):
            return a[0].device
    dev = kwargs.get("device")
    if dev is not None:
        return torch.device(dev)
    return torch.get_default_device()


def result_tensor(info: ops.OpInfo, args: tuple, kwargs: dict, out: Any) -> Any:
    if info.inplace and args and isinstance(args[0], torch.Tensor):
        return args[0]
    for name in info.out_kw:
        t = kwargs.get(name)
        if isinstance(t, torch.Tensor):
            return t
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple):
        for t in out:
            if isinstance(t, torch.Tensor):
                return t
    return None
