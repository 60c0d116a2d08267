"""The op level: every random kernel call seen through a dispatch mode, named and logged.

At a draw the recorder keeps what only that moment can tell (the generator's states,
the stack, the tensor and its registration) as an :class:`OpNote` in the window's note
buffer (:mod:`..window.notes`); the notes become :class:`~rngtrace.Draw` records in
batches. Names that are only known once the model is built are patched when the window
closes (:mod:`.naming`). Draws made while compiled code runs are written at once
(:mod:`..compiled.runs`).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, NamedTuple

import torch

from ...log import Draw, Event, EventKind, GeneratorInfo, Log, Phase
from ..basics import frames
from ..basics.generators import Generators, Slot
from ..compiled.loaded import dispatch_without_dynamo
from ..compiled.runs import CompiledRuns
from ..compiled.seedmaps import GraphCall
from ..window.distributed import shard_fields
from ..window.header import default_generators
from ..window.sinks import MemorySink, Sink
from ..window.window import Window
from . import mode, ops
from .mode import RecordingMode
from .naming import Names, Pending, provisional
from .ops import call_device, result_tensor

_PLAIN = (None, None, None)  # shard_fields of a tensor that is not a DTensor
_new = tuple.__new__
_autograd_node = torch._C._current_autograd_node  # bound once: asked at every draw
_GAP = "state changed with no traced draw (another thread, an untraced extension, or a " \
       "restored state)"


class OpNote(NamedTuple):
    """A draw as noted at its moment (see the module doc); :meth:`Recorder._describe`
    makes its Draw."""

    at: int  # the index of the draw it becomes (NamedTuple keeps ``index`` for tuple's)
    info: ops.OpInfo
    slot: Slot
    before: str | None  # the states' display forms, digested as read (while in cache)
    after: str | None
    consumed: bool
    shape: tuple[int, ...]
    dtype: torch.dtype | None
    device: Any  # torch.device, or the slot's device text for a draw without a tensor
    numel: int
    shard: tuple[Any, Any, Any]  # local shape, local offset, placements (DTensor)
    args: dict[str, Any]
    stack: frames.StackInfo
    phase: Phase
    pending: Pending
    step: int


class Recorder(Window):
    """The op-level window opened by :func:`record`; ``with`` gives its :class:`Log`."""

    def __init__(self, steps: int | None = None, sink: Sink | None = None,
                 python_rng: bool = True) -> None:
        # Kept in memory, draws are described in batches; streamed to a file, one line
        # per draw as it happens (a killed run loses nothing).
        batch = None if sink is None or isinstance(sink, MemorySink) else 1
        super().__init__(steps, sink, Log(), python_rng, batch)
        self._gens = Generators()
        self._names = Names(on_claim=self._on_claim)
        self._mode = RecordingMode(self)
        self._pending: dict[int, Pending] = {}  # draws whose names are known at the end
        self._compiled.on_replay = self._on_graph_replay
        self._runs = CompiledRuns(self._compiled, self._name_root, self._event)
        self._replay = False  # the draw being recorded is a replay (on_higher_order)

    # -- window --------------------------------------------------------------------
    def _open(self) -> None:
        self._sink.start(self.log, default_generators())
        self._gens.snapshot_defaults()
        self._names.install()
        super()._open()
        # no import of torch's compiler stack for a program that compiles nothing
        dispatch_without_dynamo(self._patches, RecordingMode)

    def _opened(self) -> None:
        self._mode.__enter__()

    def _quiet(self) -> None:
        self._mode.active = False
        if threading.get_ident() == self._thread:  # the mode stack is per thread
            mode.remove(self._mode)  # the rest of the run goes at full speed
        self._names.uninstall()

    def _flush(self) -> dict[int, Draw]:
        self._write()
        self._py_finish()
        self._sweep("gap")  # moved since the last draw: noticed as the window closes
        self._write()
        return {i: self._finalise(p) for i, p in sorted(self._pending.items())
                if p.draw is not None}

    def _generators(self) -> dict[str, GeneratorInfo]:
        return self._gens.infos()

    def _release(self) -> None:
        self._notes.clear()
        self._pending.clear()
        self._names.clear()
        self._gens.release()

    def _step_boundary(self) -> None:
        super()._step_boundary()
        if threading.get_ident() == self._thread:  # draws are noted in this thread only
            self._write()

    def _usage(self) -> None:
        """Name the modules called in forward and the parameters that got a gradient."""
        if self._called:
            self.log.called = self._names.module_names(list(self._called.values()))
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
            self._after(info, args, kwargs, out, slot, before)
        except Exception as e:
            self._internal_error(e)
        return out

    def on_higher_order(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """A higher-order op (an ``aot_eager`` graph's checkpoint): the random op inside
        ``run_and_save_rng_state`` is a draw, inside ``run_with_rng_state`` its replay."""
        name = getattr(func, "_name", "")
        if name not in ("run_and_save_rng_state", "run_with_rng_state") or not args:
            return func(*args, **kwargs)
        replay = name == "run_with_rng_state"
        op = args[1] if replay else args[0]
        info = ops.lookup(op)
        if info is None:
            return func(*args, **kwargs)
        whole: list[Any] = []

        def run(*_: Any, **__: Any) -> Any:
            out = func(*args, **kwargs)
            whole.append(out)
            return out if replay else out[1]

        self._replay = replay
        try:
            self.on_random(run, info, args[2:] if replay else args[1:], kwargs)
        finally:
            self._replay = False
        return whole[0]

    def _before(self, info: ops.OpInfo, args: tuple, kwargs: dict) -> tuple[Slot, Any]:
        gen = ops.generator_arg(info, args, kwargs)
        slot = self._gens.explicit(gen) if gen is not None else self._gens.default(
            call_device(info, args, kwargs))
        before = slot.raw()
        last = slot.last_raw
        if last is not None and before != last:
            self._event(Event("gap", slot.name, self._notes.next, None, _GAP))
        elif last is not None:
            before = last  # the same bytes: digested once (Slot.text)
        return slot, before

    def _after(self, info: ops.OpInfo, args: tuple, kwargs: dict, out: Any, slot: Slot,
               before: bytes | None) -> None:
        """What only the moment of the draw can tell (the states, the stack, the tensor
        and its registration) goes into a note; the note becomes a Draw in _write."""
        after = slot.raw()
        slot.last_raw = after
        consumed = before != after if slot.generator is not None else (
            slot.device != "meta")
        result = result_tensor(info, args, kwargs, out)
        stack = frames.describe_stack(2, self._names.known)
        phase = "backward" if _autograd_node() is not None else stack.phase or "other"
        index = self._notes.next
        pending = Pending(stack.module, index=index)
        if stack.outermost is not None:
            self._names.note_root(stack.outermost)
        # A draw in forward into a new tensor (randn_like) fills no parameter or buffer:
        # it is neither registered now nor waited for (may_wait); only in-place and out=
        # draws there can be (a lazy module's first forward; dropout's bernoulli_ into
        # a fresh mask is looked up all the same).
        if phase != "backward" and (phase != "forward" or info.inplace or info.out_kw):
            self._names.claim(result, pending, may_wait=phase != "forward")
        if pending.target is not None and phase == "other":
            phase = "init"
        # the states digested now, while they are in the cache (at the step each 5 KB
        # state would be read again from memory); the before is the last draw's after.
        # tuple.__new__: an OpNote made at C speed (OpNote(...) runs a Python __new__)
        if result is not None:
            note = _new(OpNote, (
                index, info, slot, slot.text(before), slot.text(after), consumed,
                tuple(result.shape), result.dtype, result.device, result.numel(),
                _PLAIN if type(result) is torch.Tensor else shard_fields(result),
                ops.scalar_args(info, args, kwargs), stack, phase, pending, self._steps))
        else:
            note = _new(OpNote, (
                index, info, slot, slot.text(before), slot.text(after), consumed, (), None,
                slot.device, 0, _PLAIN, ops.scalar_args(info, args, kwargs), stack, phase,
                pending, self._steps))
        at_once = self._runs.at_once(phase, self._replay)
        if at_once is not None:  # made by compiled code, or a replay
            self._write()  # the draws noted before it first
            self._write_compiled(note, at_once)
        elif self._notes.add(note):
            self._write()

    def _write(self) -> None:
        """Turn the notes into Draws and hand them to the sink, in order (at each optimizer
        step, every batch of notes, before any other record, and at the window's end: the
        names and Draws are made in one warm loop, not between the model's kernels)."""
        unsettled: list[Pending] = []  # names to resolve again at the end

        def describe(noted: list[OpNote]) -> list[Draw]:
            draws = []
            for note in noted:
                draw, final = self._describe(note)
                draws.append(draw)
                if not final:
                    unsettled.append(note.pending)
            return draws

        written, draws = self._notes.write(describe)
        for note, draw in zip(written, draws, strict=True):
            note.pending.draw = draw  # only a draw written can be patched at the end
        for pending in unsettled:
            self._pending[pending.index] = pending

    def _describe(self, note: OpNote) -> tuple[Draw, bool]:
        """A note's Draw, and whether its names are final."""
        (index, info, slot, before, after, consumed, shape, dtype, device, numel,
         (local_shape, local_offset, placement), args, stack, phase, pending, step) = note
        resolved = None if stack.building else self._names.now(pending.module, pending)
        final = resolved is not None
        if resolved is None:
            resolved = provisional(pending)
        # positional up to ``discarded`` (fields in Draw's order): a third cheaper
        draw = Draw(
            index, info.name, resolved.module, resolved.module_type, resolved.target,
            phase, step, shape, _dtype_text(dtype), _device_text(device), numel, args,
            slot.name, before, after, consumed, stack.site, stack.code,
            stack.api or ops.api_name(info.name), resolved.model, resolved.discarded,
            local_shape=local_shape, local_offset=local_offset, placement=placement,
        )
        return draw, final

    def _write_compiled(self, note: OpNote, compiled: bool) -> None:
        """A draw made by compiled code or replayed by a checkpoint, written at once (see
        :mod:`..compiled.runs`)."""
        draw, final = self._describe(note)
        seen = self._runs.seen(draw, note.info.name, self._replay) if compiled else (
            self._runs.marked(draw, self._replay))
        if isinstance(seen, list):  # the graph's draws, for its seed draw
            self._notes.hand(seen)
            return
        self._notes.hand([seen])
        note.pending.draw = seen  # only a draw written can be patched at the end
        if not final:
            self._pending[seen.index] = note.pending

    def _on_graph_replay(self, call: GraphCall) -> None:
        """A compiled backward graph recomputing checkpointed draws from saved seeds."""
        if self._state != "recording" or not self._mode.active:
            return
        try:
            self._write()  # the draws noted before these first
            self._notes.hand(self._runs.replays(call, self._notes.next, self._steps,
                                                self._read_default))
        except Exception as e:
            self._internal_error(e)

    def _read_default(self, device: torch.device) -> tuple[str, str | None]:
        slot = self._gens.default(device)
        return slot.name, slot.read()[1]

    def _name_root(self, root: Any) -> tuple[str | None, str | None] | None:
        """(model, path) of a compiled frame's module, if its model is known now."""
        self._names.note_root(root)
        r = self._names.now(root, Pending(root))
        return None if r is None else (r.model, r.module)

    def _on_claim(self, pending: Pending) -> None:
        """A tensor drawn outside any module was registered as a parameter or buffer."""
        if pending.index >= 0:  # a draw noted (written or not: _flush takes those written)
            self._pending.setdefault(pending.index, pending)

    def _finalise(self, pending: Pending) -> Draw:
        r = self._names.finish(pending)
        d = pending.draw
        phase = "init" if r.target is not None and d.phase == "other" else d.phase
        return dataclasses.replace(d, module=r.module, module_type=r.module_type,
                                   target=r.target, model=r.model, discarded=r.discarded,
                                   phase=phase, copied=r.copied)

    def on_worker_random(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict) -> Any:
        """A random kernel in a forked DataLoader worker: into the worker's part, with the
        generator, the states and the Dataset method or module that drew."""
        py = self._py
        if py is None or not py.in_worker():
            return func(*args, **kwargs)
        try:
            slot, before = self._before(info, args, kwargs)
        except Exception:  # never let a recorder bug break the user's program
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        try:
            after = slot.raw()
            slot.last_raw = after
            result = result_tensor(info, args, kwargs, out)
            site, code = frames.user_site(1)
            py.worker_draw(
                op=info.name, generator=slot.name, state_before=slot.text(before),
                state_after=slot.text(after), numel=result.numel() if result is not None else 0,
                shape=tuple(result.shape) if result is not None else (),
                dtype=_dtype_text(result.dtype if result is not None else None),
                args=ops.scalar_args(info, args, kwargs), site=site, code=code,
                api=ops.api_name(info.name))
        except Exception:
            pass  # a worker has no log to put an error event in
        return out

    def _py_name(self, module: Any, root: Any) -> tuple[str | None, str | None, str | None]:
        if root is not None:
            self._names.note_root(root)
        pending = Pending(module)
        r = self._names.now(module, pending) or provisional(pending)
        return r.model, r.module, r.module_type

    # -- events ------------------------------------------------------------------
    def _sweep(self, kind: EventKind, site: str | None = None, detail: str = _GAP) -> bool:
        """Compare every generator with the state the recorder last knew, record a
        ``kind`` event for each that moved, and remember the new states."""
        moved = False
        for slot in list(self._gens.slots.values()):
            raw = slot.raw()
            if slot.last_raw is not None and raw != slot.last_raw:
                self._event(Event(kind, slot.name, self._notes.next, site, detail))
                moved = True
            slot.last_raw = raw
        return moved

    def _reseeded(self, site: str | None, detail: str) -> bool:
        self._gens.snapshot_defaults()
        return self._sweep("reseed", site, detail)


_TEXTS: dict[Any, str] = {None: ""}  # dtypes and devices as a Draw writes them


def _dtype_text(dtype: torch.dtype | None) -> str:
    text = _TEXTS.get(dtype)
    if text is None:
        text = _TEXTS[dtype] = str(dtype).removeprefix("torch.")
    return text


def _device_text(device: Any) -> str:
    text = _TEXTS.get(device)
    if text is None:
        text = _TEXTS[device] = str(device)
    return text
