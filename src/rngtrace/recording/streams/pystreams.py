"""Python's ``random`` and NumPy's generators in the log, like torch's.

"Same seed, different results" is often not torch's generator: augmentation code draws
from ``random`` or NumPy. While a window is open (``record(python_rng=True)``, the
default) these draws are logged as :class:`~rngtrace.Draw` records next to torch's:

- ``random`` module functions (``random.random`` ... are bound methods of a hidden
  ``random._inst``: the module attributes are wrapped) and every ``random.Random``
  instance (the class's drawing methods are wrapped): generator ``python:random`` or
  ``python:Random#N`` (numbered in order of first draw); ``SystemRandom`` is left alone;
- NumPy's legacy global functions (``np.random.normal`` ...: module attributes):
  ``numpy:global``;
- ``np.random.Generator`` objects. The type is immutable, so its calls cannot be
  intercepted: the bit generator's state is read at boundaries (module calls, a
  DataLoader fetch, i.e. ``__getitem__``, optimizer steps, the window's end) and what
  moved is logged there as one record, ``op="numpy.Generator"``, charged to the module or
  Dataset whose code ran in between. Generators are found when made by
  ``np.random.default_rng`` in the window, or held as attributes by a module or a Dataset
  (two levels deep: ``dataset.transform.rng``); they are named ``numpy:Generator#N``.
  ``np.random.RandomState`` objects held so are read the same way
  (``numpy:RandomState#N``, ``op="numpy.RandomState"``).

A record's ``op`` is the function called (``random.gauss``, ``Random.shuffle``,
``numpy.random.normal``); ``module`` the module that drew, or ``Class.method`` for a
Dataset method; ``numel`` the number of values returned (for a boundary record of a
PCG64 Generator: the 64-bit words consumed, exact; 0 for other bit generators);
``state_before``/``state_after`` 16-hex-digit digests; ``args`` the scalar arguments and,
for a generator held by an object, ``held_by`` (``"MyDataset.rng"``). Seeding
(``random.seed``, ``setstate``, ``np.random.seed``, ``set_state``) is a ``reseed`` event.

Transparent: every wrapper calls the original once with the same arguments; reading a
state never changes it. Unused, the cost is one check per module call. A record costs
tens of microseconds (two state reads, a digest, a stack walk): a program that calls
``random`` a million times in a window pays for it; ``record(python_rng=False)`` turns
all of this off.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from torch import nn

from ...log import EventKind, GeneratorInfo
from ..basics import frames
from ..basics.patches import Patches
from .digests import np_digest, pcg64_words
from .records import (
    Owner,
    Watched,
    count,
    dataset_method,
    generator_kind,
    generator_state,
    held_by,
    scalar_args,
)

Emit = Callable[[dict[str, Any]], None]  # Draw fields without index (step optional)
EmitEvent = Callable[[EventKind, str, "str | None", str], None]  # kind, generator, site, detail
# (module, outermost module on the stack) -> (model, path, type)
NameModule = Callable[[nn.Module, "nn.Module | None"],
                      "tuple[str | None, str | None, str | None]"]
# what the window installs through the streams' own patches (pypatches, workers)
Installer = Callable[["PyStreams", Patches], None]

_OPEN: list[PyStreams] = []  # the open window's streams (at most one), for the patches


class Part(Protocol):
    """Where a forked DataLoader worker's records go (:class:`.workers.WorkerPart`)."""

    def active(self) -> bool: ...  # this process is a worker that has started
    def draw(self, fields: dict[str, Any]) -> None: ...
    def flush(self) -> None: ...  # at the end of each fetch


class PyStreams:
    """The Python and NumPy streams of one window; the recorder hands records on.

    Its state is its own: the wrappers (:mod:`.pypatches`, :mod:`.workers`) and the window
    act through the methods below, each guarded so that a recorder bug becomes an
    ``"error"`` event, never an exception in the user's program. Invariant:

    - ``_on`` only between :meth:`install` and :meth:`finish` (or :meth:`uninstall`), and
      ``_thread`` the recording thread (in a forked DataLoader worker, the worker's);
    - ``_names`` keeps every generator it named alive (``id`` -> (object, name)), so that
      an id names one object for the window's life; every watched generator is named;
    - ``_stack`` holds the owners of the boundaries open in the recording thread (module
      calls, fetches), innermost last; ``_depth`` is above 0 only while a recorded draw
      runs the original function (its inner calls are part of that draw);
    - ``_watched`` and ``_scanned`` are never replaced, only changed, so the views
      :meth:`call_filter` hands out stay current;
    - ``_parts`` is the workers' folder until taken (:meth:`take_parts`); ``_worker`` is
      set only in a forked worker.
    """

    __slots__ = (
        "_counts",
        "_depth",
        "_emit_event",
        "_emit_fields",
        "_first",
        "_name_module",
        "_names",
        "_np",
        "_on",
        "_parts",
        "_patches",
        "_scanned",
        "_stack",
        "_steps",
        "_thread",
        "_watched",
        "_worker",
    )

    def __init__(self, emit: Emit, emit_event: EmitEvent, name_module: NameModule,
                 steps: Callable[[], int] = lambda: 0) -> None:
        self._emit_fields = emit
        self._emit_event = emit_event
        self._name_module = name_module
        self._steps = steps  # the recorder's optimizer steps so far
        self._parts: str | None = None  # where DataLoader workers write their parts
        self._names: dict[int, tuple[Any, str]] = {}  # id -> (obj, name)
        self._first: dict[str, str] = {}  # name -> first state digest
        self._watched: list[Watched] = []
        self._scanned: set[int] = set()  # ids of modules/datasets looked into
        self._stack: list[Owner] = []  # open module calls and fetches
        self._on = False
        self._thread = 0
        self._depth = 0
        self._worker: Part | None = None  # in a DataLoader worker: its part
        self._counts: dict[str, int] = {}
        self._patches: Patches | None = None
        self._np: Any = None

    # -- window ----------------------------------------------------------------------
    def install(self, *installers: Installer) -> None:
        """Start recording: each of ``installers`` (the window passes
        :func:`.pypatches.install` and :func:`.workers.install`) wraps functions through
        these streams' own patches; if one fails, all are undone."""
        # No lock: an interrupt at the wrong line would leave it held. Each patch is
        # noted before it is made, so restore() undoes whatever part was done.
        self._np = sys.modules.get("numpy")  # NumPy's functions only if already imported
        self._patches = Patches()
        try:
            for install in installers:
                install(self, self._patches)
        except BaseException:
            self._patches.restore()
            raise
        self._thread, self._on = threading.get_ident(), True
        _OPEN.append(self)

    @property
    def numpy(self) -> Any:
        """NumPy, if the program had imported it when the window opened (else None)."""
        return self._np

    def uninstall(self) -> None:
        self._on = False
        if self in _OPEN:
            _OPEN.remove(self)
        if self._patches is not None:
            self._patches.restore()

    def finish(self, collect: Callable[[PyStreams], list[dict[str, Any]]]
               ) -> dict[str, GeneratorInfo]:
        """The last boundary read, then the records ``collect`` finds (the workers'
        parts, :func:`.workers.collect`); the generators seen, for the log's header."""
        if self._on:
            self._guard(self.boundary, None)
        self._on = False
        self._stack.clear()
        infos = {n: GeneratorInfo(n, "cpu", None, self._first.get(n)) for _, n in
                 self._names.values()}
        try:
            parts = collect(self)  # the workers' parts, after the window's own
        except Exception as e:  # a part that cannot be read: the window still closes
            parts = []
            self._emit_event("error", "", None, f"worker parts: {type(e).__name__}: {e}")
        for fields in parts:
            name = fields["generator"]
            if name not in infos:
                infos[name] = GeneratorInfo(name, "cpu", None, fields["state_before"])
            self._emit_fields(fields)
        self._names.clear()
        self._watched.clear()
        return infos

    def active(self) -> bool:
        """Whether draws are recorded here: the window is open and this is its thread."""
        return self._on and threading.get_ident() == self._thread

    def step_boundary(self) -> None:
        """An optimizer step of the window's thread: a boundary (errors become events)."""
        if self.active():
            self._guard(self.boundary, None)

    def call_filter(self) -> tuple[list[Watched], set[int]]:
        """Views for the module-call wrapper's test, read only: a call needs
        :meth:`module_call` while any generator is watched or its module is not scanned
        yet (``watched or id(module) not in scanned``: two lookups in the wrapper's frame,
        where a method would cost a call on every module call of the process)."""
        return self._watched, self._scanned

    # -- records -------------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # never let a recorder bug break the user's program
            self._emit_event("error", "", None, f"{type(e).__name__}: {e}")

    def _name_of(self, obj: Any, kind: str, state: str) -> str:
        """The stream name of a generator object, given on first sight."""
        hit = self._names.get(id(obj))
        if hit is not None:
            return hit[1]
        if obj is random._inst:
            name = "python:random"
        elif self._np is not None and obj is self._np.random.mtrand._rand:
            name = "numpy:global"
        else:
            n = self._counts[kind] = self._counts.get(kind, 0) + 1
            name = f"{kind}#{n}"
        self._names[id(obj)] = (obj, name)  # kept alive: ids stay unique in the window
        self._first.setdefault(name, state)
        return name

    def hears(self) -> bool:
        """Whether a draw made now is recorded: the window's thread, and not an inner
        call of a draw being recorded (``shuffle`` calling ``_randbelow``)."""
        return not self._depth and self.active()

    def draw(self, rng: Any, label: str, digest: Callable[[Any], str],
             orig: Callable[..., Any], call_args: tuple, args: tuple, kwargs: dict) -> Any:
        """Make the draw ``orig(*call_args, **kwargs)`` of ``rng`` and record it (``label``
        names the function, ``args`` are the user's arguments)."""
        self._depth += 1
        try:
            before = digest(rng)
            out = orig(*call_args, **kwargs)
        finally:
            self._depth -= 1
        self._guard(self._record, rng, label, args, kwargs, out, before, digest)
        return out

    def _record(self, rng: Any, op: str, args: tuple, kwargs: dict[str, Any], out: Any,
                before: str, read: Callable[[Any], str]) -> None:
        after = read(rng)
        if isinstance(rng, random.Random) and rng is not random._inst:
            op = "Random." + op.removeprefix("random.")
        name = self._name_of(rng, "python:Random", before)
        numel, shape, dtype = count(out, args)
        owner = self._owner()
        fields = scalar_args(args, kwargs)
        held = held_by(owner, rng)
        if held is not None:
            fields["held_by"] = held
        site, code = frames.user_site(1)
        self._emit(owner, op=op, generator=name, state_before=before, state_after=after,
                   numel=numel, shape=shape, dtype=dtype, args=fields, site=site, code=code)

    def _emit(self, owner: Owner | None, **fields: Any) -> None:
        fields = self._fields(owner, **fields)
        if self._worker is not None:
            self._worker.draw(fields)
        else:
            self._emit_fields(fields)

    def _fields(self, owner: Owner | None, **fields: Any) -> dict[str, Any]:
        """A draw's fields (without index and step), with its owner's names."""
        model = module = kind = None
        phase = "other"
        if owner is not None and owner.module is not None:
            root = owner.root if owner.root is not None else frames.describe_stack(1).outermost
            model, module, kind = self._name_module(owner.module, root)
            phase = owner.phase
        elif owner is not None:
            kind = type(owner.dataset).__name__
            module = f"{kind}.{owner.method}"
        fields.update(module=module, module_type=kind, model=model, phase=phase,
                      target=None, device=fields.get("device", "cpu"),
                      consumed=fields["state_before"] != fields["state_after"],
                      api=fields.get("api"), discarded=False)
        return fields

    def knows(self, rng: Any) -> bool:
        """Whether ``rng`` drew (or was watched) in this window."""
        return id(rng) in self._names

    def reseed(self, rng: Any, label: str, args: tuple) -> None:
        """``label(*args)`` seeded ``rng``: a ``"reseed"`` event (none in a worker)."""
        self._guard(self._reseed, rng, label, args)

    def _reseed(self, rng: Any, label: str, args: tuple) -> None:
        if self._worker is not None:
            return  # torch seeds random and NumPy in each worker: expected, not logged
        name = self._name_of(rng, "python:Random", "")
        shown = ", ".join("<state>" if isinstance(a, tuple | dict) else repr(a) for a in args)
        site, _ = frames.user_site(1)
        self._emit_event("reseed", name, site, f"{label}({shown})")

    def _owner(self) -> Owner | None:
        """The innermost module call or Dataset method on the stack."""
        info = frames.describe_stack(1)
        if info.module is not None:
            return Owner(module=info.module, root=info.outermost,
                         phase=info.phase or "other")
        f: Any = sys._getframe(1)
        while f is not None:
            code = f.f_code
            if code.co_argcount and code.co_varnames[0] == "self":
                obj = f.f_locals.get("self")
                if dataset_method(code, obj):
                    return Owner(dataset=obj, method=code.co_name)
            f = f.f_back
        return self._stack[-1] if self._stack else None

    # -- NumPy Generators (and RandomState objects), read at boundaries ----------------
    def watch_new(self, gen: Any) -> None:
        """A Generator made in the window (``np.random.default_rng``): read it from now on."""
        self._guard(self._watch, gen, None)

    def _watch(self, gen: Any, held_by: str | None) -> None:
        if any(w.gen is gen for w in self._watched):
            return
        state = generator_state(gen)
        text = np_digest(state)
        name = self._name_of(gen, "numpy:" + generator_kind(gen), text)
        self._watched.append(Watched(gen, name, held_by, state, text))

    def _scan(self, obj: Any, label: str, depth: int = 2) -> None:
        """Watch the Generators and RandomStates ``obj`` holds as attributes (``depth``
        levels deep); NumPy's global RandomState is patched instead."""
        self._scanned.add(id(obj))
        npr = getattr(self._np, "random", None)
        if npr is None:
            return
        types = (npr.Generator, npr.RandomState)
        for attr, value in list(getattr(obj, "__dict__", {}).items()):
            if isinstance(value, types):
                if value is not npr.mtrand._rand:
                    self._watch(value, f"{label}.{attr}")
            elif depth > 1 and hasattr(value, "__dict__") and not isinstance(
                    value, nn.Module | type) and not callable(value):
                self._scan(value, f"{label}.{attr}", depth - 1)

    def boundary(self, owner: Owner | None = None) -> None:
        """Read every watched Generator; charge what moved to ``owner`` (or outside)."""
        for w in self._watched:
            state = generator_state(w.gen)
            text = np_digest(state)
            if text == w.text:
                continue
            before, old, w.last, w.text = w.last, w.text, state, text
            words = pcg64_words(before, state)
            args: dict[str, Any] = {"held_by": w.held_by} if w.held_by else {}
            self._emit(owner, op="numpy." + generator_kind(w.gen), generator=w.name,
                       state_before=old, state_after=text, numel=words or 0, shape=(),
                       dtype="", args=args, site=None, code=None)

    def _around(self, owner: Owner, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` as a boundary pair charged to ``owner`` (a module call, a fetch)."""
        self.boundary(self._stack[-1] if self._stack else None)
        self._stack.append(owner)
        try:
            return call(*args)
        finally:
            self._stack.pop()
            self._guard(self.boundary, owner)

    def module_call(self, module: nn.Module, call: Callable[..., Any], args: tuple,
                    kwargs: dict[str, Any]) -> Any:
        """A module call the window's ``nn.Module.__call__`` hands on (see
        :meth:`call_filter`): the module is scanned once; while a generator is watched,
        the call is a boundary pair charged to the module."""
        if id(module) not in self._scanned:
            self._guard(self._scan, module, type(module).__name__, 1)
        if not self._watched or not self.active():
            return call(module, *args, **kwargs)
        return self._around(Owner(module=module, phase="forward"),
                            lambda: call(module, *args, **kwargs))

    def fetch(self, fetch: Callable[..., Any], fetcher: Any, index: Any) -> Any:
        """A DataLoader fetch (``fetch(fetcher, index)``): the Dataset is scanned once;
        while a generator is watched, a boundary pair charged to the Dataset. In a worker,
        its records go to the worker's part at the fetch's end."""
        ds = fetcher.dataset
        if id(ds) not in self._scanned:
            self._guard(self._scan, ds, type(ds).__name__)
        try:
            if not self._watched:
                return fetch(fetcher, index)
            return self._around(Owner(dataset=ds), fetch, fetcher, index)
        finally:
            if self._worker is not None:
                self._worker.flush()

    # -- DataLoader workers (see .workers) ---------------------------------------------
    def keep_parts_in(self, directory: str) -> None:
        """Forked workers write their parts in ``directory`` (taken at the end)."""
        self._parts = directory

    def take_parts(self) -> str | None:
        """The workers' folder, handed over once; None in a worker (whose parent reads
        the parts) or when already taken."""
        directory, self._parts = self._parts, None
        return directory if self._worker is None else None

    def forked(self, make_part: Callable[[str, int], Part]) -> None:
        """In a forked child of the window's process: if the window was recording, the
        child's records go to the part ``make_part(folder, steps so far)``."""
        if self._on and self._parts is not None:
            self._worker = make_part(self._parts, self._steps())
            self._thread = threading.get_ident()

    def in_worker(self) -> bool:
        """Whether this process is a DataLoader worker that has started."""
        return self._worker is not None and self._worker.active()

    def worker_draw(self, **fields: Any) -> None:
        """A torch draw in a worker (the op level's), with the Dataset method or module
        that drew, into the worker's part."""
        if self._worker is not None:
            self._worker.draw(self._fields(self._owner(), **fields))


def current() -> PyStreams | None:
    """The open window's streams, if any."""
    return _OPEN[-1] if _OPEN else None
