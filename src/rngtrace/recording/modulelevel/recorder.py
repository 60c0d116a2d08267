"""The light mode, ``record(level="module")``: which module consumed, with no dispatch mode.

The op-level recorder sees every random kernel, at the price of a dispatch mode on
every op (about 2x a small model's step). The light mode sees only module calls: for
the window, ``nn.Module.__call__`` is wrapped (:mod:`..window.calls`; global forward hooks
would send every module call down PyTorch's slow path), the default generators'
states are read at each module call's entry and exit, and a change is charged to the
module whose *own* code ran in between, i.e. the innermost module open (a parent's
entry-to-exit difference includes its children's, so it is never used). Nothing else is
touched, so a whole training run can stay monitored.

What a record holds, which calls are read (torch.nn modules whose own code cannot draw,
and *learned quiet calls*: see :mod:`.quiet`) and what the mode cannot see are in
``docs/light-mode.md``. In short: one :class:`~rngtrace.Draw` (``op="module"``) per
stretch of a module call's own consumption of a generator, in the order consumed, so that
every generator's records chain; consumption between module calls is an *outside* record
(``module=None``, ``phase="other"``); only the default generators are read (CPU, and
each CUDA device the program initialised); a ``torch.compile``-d module is charged as a
whole. Which module calls are not read, and how called modules are named, is in
:mod:`.paths`.

Example::

    >>> import torch, rngtrace
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    >>> with rngtrace.record(level="module") as log:
    ...     y = net(torch.ones(2, 4))
    >>> [(d.module, d.module_type, d.numel) for d in log.draws]
    [('1', 'Dropout', 0)]
"""

from __future__ import annotations

import itertools
import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any, NamedTuple

import torch
from torch import nn

from ...log import Draw, Event, GeneratorInfo, Log, Phase
from ..basics import frames
from ..basics.generators import DefaultGen
from ..compiled import draws as compiled_draws
from ..compiled import seedmaps as compiled
from ..window.header import default_generators
from ..window.sinks import Sink
from ..window.window import CallHook, Window
from .paths import DROPOUT, PURE, Paths
from .quiet import QuietCalls, unread_text

# bound once: the hot path looks them up at every call or record
_new = tuple.__new__
_get_ident = threading.get_ident
_autograd_node = torch._C._current_autograd_node
_user_site_from = frames.user_site_from
_BACKWARDS = "CUDA generator state moved backwards or was reseeded (not by a call the " \
             "window saw: a restored state, Generator.manual_seed)"


@dataclass(slots=True)
class _Use:
    """One stretch of a call's consumption of one generator (extended while nothing else
    draws from it)."""

    gen: DefaultGen
    before: str  # the states' display forms (digested as read, while the state is in
    after: str  # the cache: at the step, 5 KB apiece would be read again from memory)
    delta: int = 0


class ModuleNote(NamedTuple):
    """A stretch of consumption, noted as it starts. Notes are turned into Draws and handed
    to the sink together (see :mod:`..window.notes`), at each optimizer step (or every
    batch, before an event, at the window's end): the names and the Draws are made in
    one warm loop instead of one at a time between the model's kernels (the states are
    digested as they are read, see :class:`_Use`)."""

    at: int  # the index of the draw it becomes (NamedTuple keeps ``index`` for tuple's)
    gen: DefaultGen
    module: nn.Module | None  # None: between module calls (an outside record)
    root: nn.Module | None  # the outermost call open
    module_type: str | None
    phase: Phase
    step: int
    use: _Use
    site: str | None
    code: str | None


class ModuleRecorder(Window):
    """The window opened by ``record(level="module")``; ``with`` gives its :class:`Log`."""

    _failure = "follow a module call"

    def __init__(self, steps: int | None = None, sink: Sink | None = None,
                 python_rng: bool = True) -> None:
        super().__init__(steps, sink, Log(level="module"), python_rng)
        self._gens: list[DefaultGen] = []
        self._cuda_seen = 0
        self._stack: list[nn.Module] = []
        # _frees[i]: the own code of _stack[i] cannot draw (a torch.nn container such as
        # TransformerEncoder, see .paths.PURE). _still: since the last read of the
        # generators only such code ran, so the next boundary need not read them again
        # (a drawing call inside TransformerEncoder is read at its exit only).
        self._frees: list[bool] = []
        self._still = False
        self._q = QuietCalls(self.learn_after)  # calls no longer read (see .quiet)
        # per open call, parallel to _stack: a serial number and the wrapper's frame (the
        # caller's line is the records' site)
        self._calls: list[int] = []
        self._frames: list[FrameType] = []
        self._serial = itertools.count(1)
        # id(gen) -> (serial, use): the last stretch noted of each generator, extended by
        # the next consumption charged to the same call; none once written (see _write)
        self._tail: dict[int, tuple[int, _Use]] = {}
        self._compiled.on_call = self._on_graph
        self._seed_maps: dict[str, compiled.SeedMap] = {}
        self._said: set[int] = set()  # compiled modules said to be charged as a whole
        self._paths = Paths()

    # -- window --------------------------------------------------------------------
    def _open(self) -> None:
        self._add_gen("default:cpu", "cpu", torch.default_generator, cuda=False)
        self._check_cuda()
        self._sink.start(self.log, default_generators())
        self._patches.hook(nn.modules.module.register_module_module_registration_hook,
                           self._on_module)
        super()._open()

    def _quiet(self) -> None:
        self._thread = 0  # the module-call wrapper is a pass-through from now on

    def _flush(self) -> dict[int, Draw]:
        self._boundary()  # closed inside a module call: what it drew is charged to it
        self._stack.clear()
        self._frees.clear()
        self._calls.clear()
        self._frames.clear()
        self._write()
        self._py_finish()
        return {}

    def _generators(self) -> dict[str, GeneratorInfo]:
        return {g.name: g.info() for g in self._gens}

    def _release(self) -> None:
        self._tail.clear()
        self._frames.clear()
        self._notes.clear()
        self._paths.clear()
        self._q.reset()
        for g in self._gens:
            g.generator = None

    def _step_here(self) -> bool:
        return threading.get_ident() == self._thread

    def _step_boundary(self) -> None:
        self._boundary()  # what the step and the code before it consumed is this step's
        if self._py is not None:  # pystreams: a step is a boundary
            self._py.boundary()
        self._write()

    # -- generators ------------------------------------------------------------------
    def _add_gen(self, name: str, device: str, generator: Any, cuda: bool) -> None:
        self._gens.append(DefaultGen.start(name, device, generator, cuda))

    def _check_cuda(self) -> None:
        """Add the CUDA default generators once the program has initialised CUDA."""
        if self._cuda_seen or not torch.cuda.is_initialized():
            return
        self._cuda_seen = torch.cuda.device_count()
        for i in range(self._cuda_seen):
            self._add_gen(f"default:cuda:{i}", f"cuda:{i}", torch.cuda.default_generators[i],
                          cuda=True)

    # -- module calls (the hot path) -------------------------------------------------------
    def _call_hook(self) -> CallHook:
        """The light mode's part of the module-call wrapper (see :meth:`Window._wrap`), its
        hot path: every module call of the window's thread. A call whose own code cannot
        draw, or learned quiet, is not read; a call that is read costs two generator reads
        and a few lookups; what it consumed is only noted (:class:`ModuleNote`)."""
        rec, stack, frees, calls, wframes, q = (self, self._stack, self._frees, self._calls,
                                                self._frames, self._q)
        boundary, leave, getframe, serial = (self._boundary, self._leave, sys._getframe,
                                             self._serial.__next__)
        py, pure, dropout, quiets, qopen, learn = (self._py, PURE, DROPOUT, q.modules, q.open,
                                                   q.learn_after)
        watched, scanned = py.call_filter() if py is not None else ([], set())
        # hooks every module call runs (register_module_forward_hook): code that may draw
        gpre, gpost = (nn.modules.module._global_forward_pre_hooks,
                       nn.modules.module._global_forward_hooks)

        def hook(module: nn.Module, call: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
            kind = type(module)
            free = (kind in pure or (kind in dropout and not module.training)) and not (
                module._forward_pre_hooks or module._forward_hooks or gpre or gpost)
            if free and stack:
                return call(module, *args, **kwargs)  # its own code cannot draw
            if stack and quiets.get(id(module)) is module.training:  # learned quiet
                rec._still = False
                q.ran.append(module)
                qopen.append((module, len(stack)))
                try:
                    if py is not None and (watched or id(module) not in scanned):
                        return py.module_call(module, call, args, kwargs)
                    return call(module, *args, **kwargs)
                finally:
                    if qopen:
                        qopen.pop()
            # entered: charge what ran since the last boundary (unless nothing could draw)
            try:
                if not stack:
                    rec._root(module)
                if not rec._still and boundary() and learn and stack:
                    q.drew_next_to(module)
                q.after = None
            except Exception as e:  # never let a recorder bug break the user's program
                rec._internal_error(e)
                return call(module, *args, **kwargs)
            calls.append(serial())
            wframes.append(getframe(1))  # the wrapper's: its caller's line is the site
            frees.append(free)
            stack.append(module)
            rec._still = free
            q.ran = []
            depth = len(stack) - 1
            try:
                if py is not None and (watched or id(module) not in scanned):
                    return py.module_call(module, call, args, kwargs)  # pystreams
                return call(module, *args, **kwargs)
            finally:
                leave(depth)

        return hook

    def _root(self, module: nn.Module) -> None:
        """A call with nothing open: CUDA may have been initialised, a model may be new."""
        self._check_cuda()
        self._paths.note_root(module)

    def _leave(self, depth: int) -> None:
        """The call entered at ``depth`` returns (or raises): charge and close it."""
        if self._thread != _get_ident():
            return  # the window closed meanwhile
        stack, frees = self._stack, self._frees
        try:
            q = self._q
            if not self._still and self._boundary() and q.learn_after:
                q.drew_next_to(None)
            calls = self._calls
            module: nn.Module | None
            if len(stack) == depth + 1 == len(calls):  # the common case: one call closes
                module = stack.pop()
                frees.pop()
                self._frames.pop()
                calls.pop()
            else:  # an interrupt or a failed read left more open: close them too
                module = stack[depth] if len(stack) > depth else None
                del stack[depth:], frees[depth:], calls[depth:], self._frames[depth:]
            # what runs next is the code of the call still open (none: the program's)
            self._still = frees[-1] if frees else False
            if q.open or q.ran:
                q.stretch_at(len(stack))
            if module is not None and q.learn_after:
                q.returned(module, depth)
        except Exception as e:
            self._still = False
            self._internal_error(e)

    def _boundary(self) -> bool:
        """Read the states; charge any change to the innermost open call (or outside).
        Whether any moved."""
        self._still = False
        moved = False
        for g in self._gens:
            raw = g.read()
            if raw != g.last:
                if self._q.ran:
                    self._unread(g)
                self._charge(g, raw)
                moved = True
        return moved

    # -- learned quiet calls (see .quiet) ---------------------------------------------------
    #: Calls read in a row, each drawing nothing of its own and next to stretches of its
    #: caller's code that drew nothing, after which a module's calls are not read any
    #: more (0: every call is read). A module that draws nothing here is read in its
    #: first steps only: a 12-layer BERT's step reads the generators 77 times instead
    #: of 235.
    learn_after = 2

    def _unread(self, g: DefaultGen) -> None:
        """A stretch in which quiet calls ran drew: say that the record charged to the
        call that is open may belong to them, and read them from now on."""
        ran = self._q.take_ran()
        stack = self._stack
        root = stack[0] if stack else None

        def name(m: nn.Module) -> str:
            return self._paths.resolve(m, root)[1] or f"{type(m).__name__} (the model)"

        names = list(dict.fromkeys(name(q) for q in ran))
        owner = name(stack[-1]) if stack else "the code outside modules"
        self._event(Event("unread", g.name, self._notes.next, None,
                          unread_text(owner, names, self._q.learn_after)))

    def _charge(self, g: DefaultGen, raw: Any) -> None:
        before, g.last = g.last, raw
        delta = 0
        if g.cuda:
            if raw[0] != before[0] or raw[1] < before[1]:
                self._event(Event("gap", g.name, self._notes.next, None, _BACKWARDS))
                return
            delta = raw[1] - before[1]
        depth = len(self._stack) - 1
        if depth < 0:  # between module calls: an outside record of its own
            use = _Use(g, g.show(before), g.show(raw), delta)
            self._notes.add(_new(ModuleNote, (self._notes.next, g, None, None, None,
                                              "other", self._steps, use, None, None)))
            return  # no write here: the next stretch of a call may extend its tail
        serial = self._calls[depth]
        if self._q.learn_after:  # it drew: its calls stay read (see .quiet)
            self._q.drew(self._stack[depth])
        tail = self._tail.get(id(g))
        if tail is not None and tail[0] == serial:  # the same call's stretch goes on
            use = tail[1]
            use.after = g.show(raw)
            use.delta += delta
            return
        self._note(depth, _Use(g, g.show(before), g.show(raw), delta))

    def _note(self, depth: int, use: _Use) -> None:
        """A stretch of the call at ``depth`` starts: note it (see :class:`ModuleNote`)."""
        stack = self._stack
        module = stack[depth]
        # a compiled module, charged as a whole (docs/compile.md; not hasattr: a missing
        # attribute costs nn.Module an error message)
        if "_orig_mod" in module._modules and id(module) not in self._said:
            self._say_whole(module, stack[0])
        site, code = _user_site_from(self._frames[depth].f_back)
        phase = "backward" if _autograd_node() is not None else "forward"
        # tuple.__new__: a ModuleNote made at C speed (ModuleNote(...) runs Python code)
        due = self._notes.add(_new(ModuleNote, (self._notes.next, use.gen, module, stack[0],
                                                type(module).__name__, phase, self._steps,
                                                use, site, code)))
        self._tail[id(use.gen)] = (self._calls[depth], use)
        if due:
            self._write()

    def _on_graph(self, call: compiled.GraphCall) -> None:
        """An Inductor graph with a seed map runs: keep the map for naming."""
        if call.seed_map is not None:
            self._seed_maps[call.seed_map.label] = call.seed_map

    def _say_whole(self, module: nn.Module, root: nn.Module) -> None:
        """Say once, as a ``compiled`` event, that a compiled module is charged whole."""
        self._said.add(id(module))
        path = self._paths.resolve(module, root)[1]
        where = f"{path or '(root)'} ({type(module).__name__})"
        self._event(Event("compiled", "", self._notes.next, None,
                          compiled_draws.whole_text(where, list(self._seed_maps.values()))))

    def _write(self) -> None:
        """Hand the noted records to the sink, as Draws, in order. A stretch written is
        not extended any more: the call's next consumption is a record of its own."""
        self._tail.clear()
        self._notes.write(self._describe)

    def _describe(self, notes: list[ModuleNote]) -> list[Draw]:
        resolve = self._paths.resolve
        draws = []
        for index, g, module, root, kind, phase, step, u, site, code in notes:
            model, path = resolve(module, root) if module is not None else (None, None)
            # positional: a third cheaper than keywords (fields in Draw's order)
            draws.append(Draw(index, "module", path, kind, None, phase, step, (), "",
                              g.device, u.delta, {}, g.name, u.before, u.after, True,
                              site, code, None, model))
        return draws

    def _event(self, event: Event) -> None:
        self._write()  # the records before it first: the sink keeps them in order
        self._sink.event(event)

    # -- pystreams: names of Python and NumPy draws (recording.streams.pystreams) -------------

    def _py_name(self, module: Any, root: Any) -> tuple[str | None, str | None, str | None]:
        stack = self._stack
        model, path = self._paths.resolve(module, stack[0] if stack else root)
        return model, path, type(module).__name__

    # -- other callbacks -----------------------------------------------------------------
    def _on_module(self, parent: nn.Module, name: str, child: nn.Module | None) -> None:
        self._paths.changed()

    def _reseeded(self, site: str | None, detail: str) -> bool:
        self._check_cuda()
        changed = False
        for g in self._gens:
            raw = g.read()
            if raw != g.last:
                g.last = raw
                self._event(Event("reseed", g.name, self._notes.next, site, detail))
                changed = True
        return changed

    def _usage(self) -> None:
        """Name the modules called and the parameters that got a gradient (the op
        recorder's ``called``/``with_grad``), from the models seen."""
        self.log.called, self.log.with_grad = self._paths.usage(
            list(self._called.values()), self._graded)
