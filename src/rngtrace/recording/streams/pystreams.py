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

import hashlib
import random
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ...log import GeneratorInfo
from ..basics import frames
from ..basics.places import place

_SCALARS = (bool, int, float, str)
_MULT = 0x2360ED051FC65DA44385DF649FCCF645  # PCG64's multiplier (numpy pcg64.h)
_MASK = (1 << 128) - 1

Emit = Callable[[dict[str, Any]], None]  # Draw fields without index (step optional)
EmitEvent = Callable[[str, str, "str | None", str], None]  # kind, generator, site, detail
# (module, outermost module on the stack) -> (model, path, type)
NameModule = Callable[[nn.Module, "nn.Module | None"],
                      "tuple[str | None, str | None, str | None]"]

_OPEN: list[PyStreams] = []  # the open window's streams (at most one), for the patches


def _feed(h: Any, v: Any) -> None:
    if isinstance(v, dict):
        for k in sorted(v):
            h.update(str(k).encode())
            _feed(h, v[k])
    elif hasattr(v, "tobytes"):
        h.update(v.tobytes())
    else:
        h.update(repr(v).encode())


def np_digest(state: Any) -> str:
    """A NumPy state (``bit_generator.state``, a dict) as a 16-hex-digit digest."""
    h = hashlib.blake2b(digest_size=8)
    _feed(h, state)
    return h.hexdigest()


def np_global_digest(rand: Any) -> str:
    """NumPy's global RandomState as a digest: its MT19937 words, position and cached
    gaussian (the fast path of :func:`np_digest` for the state read around each call)."""
    _, key, pos, has_gauss, gauss = rand.get_state(legacy=True)
    h = hashlib.blake2b(key.tobytes(), digest_size=8)
    h.update(struct.pack("<qqd", pos, has_gauss, gauss))
    return h.hexdigest()


def py_digest(rng: random.Random) -> str:
    """A ``random.Random`` state (625 words and the cached gauss) as a digest."""
    _, words, gauss = random.Random.getstate(rng)
    h = hashlib.blake2b(struct.pack(f"<{len(words)}I", *words), digest_size=8)
    h.update(repr(gauss).encode())
    return h.hexdigest()


def pcg64_words(a: dict[str, Any], b: dict[str, Any]) -> int | None:
    """64-bit outputs a PCG64 generator made between states ``a`` and ``b`` (the LCG
    distance, as pcg-cpp's ``distance``), or None for another bit generator or stream."""
    if a.get("bit_generator") != "PCG64" or b.get("bit_generator") != "PCG64":
        return None
    cur, new = a["state"]["state"], b["state"]["state"]
    plus, mult = a["state"]["inc"], _MULT
    if plus != b["state"]["inc"]:
        return None
    bit, dist = 1, 0
    while cur != new and bit <= _MASK:
        if (cur & bit) != (new & bit):
            cur = (cur * mult + plus) & _MASK
            dist |= bit
        bit <<= 1
        plus = ((mult + 1) * plus) & _MASK
        mult = (mult * mult) & _MASK
    return dist if cur == new else None


def _count(out: Any, args: tuple) -> tuple[int, tuple[int, ...], str]:
    """Values a call returned (numel), its shape and dtype; in-place shuffles count the
    sequence shuffled."""
    shape = getattr(out, "shape", None)
    if shape is not None and hasattr(out, "size"):
        return int(out.size), tuple(int(s) for s in shape), str(out.dtype)
    if out is None:  # shuffle(x): x was drawn into
        n = len(args[0]) if args and hasattr(args[0], "__len__") else 0
        return n, (n,), ""
    if isinstance(out, list | bytes):
        return len(out), (len(out),), type(out).__name__
    return 1, (), type(out).__name__


def _scalar_args(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {f"a{i}": a for i, a in enumerate(args) if type(a) in _SCALARS}
    out.update((k, v) for k, v in kwargs.items() if type(v) in _SCALARS)
    return out


@dataclass(slots=True)
class Watched:
    """A NumPy Generator read at boundaries."""

    gen: Any
    name: str
    held_by: str | None
    last: dict[str, Any]
    text: str


@dataclass(slots=True)
class Owner:
    """Who a record is charged to: a module (named by the recorder) or a Dataset method."""

    module: nn.Module | None = None
    root: nn.Module | None = None  # the outermost module on the stack, when known
    dataset: Any = None
    method: str = "__getitem__"
    phase: str = "other"


@dataclass
class PyStreams:
    """The Python and NumPy streams of one window; the recorder hands records on."""

    emit: Emit
    emit_event: EmitEvent
    name_module: NameModule
    steps: Callable[[], int] = lambda: 0  # the recorder's optimizer steps so far
    parts: str | None = None  # where DataLoader workers write their parts (workers.py)
    names: dict[int, tuple[Any, str]] = field(default_factory=dict)  # id -> (obj, name)
    first: dict[str, str] = field(default_factory=dict)  # name -> first state digest
    watched: list[Watched] = field(default_factory=list)
    scanned: set[int] = field(default_factory=set)  # ids of modules/datasets looked into
    stack: list[Owner] = field(default_factory=list)  # open module calls and fetches
    on: bool = False
    thread: int = 0
    depth: int = 0
    worker: Any = None  # in a DataLoader worker: its part (recording.workers)
    _counts: dict[str, int] = field(default_factory=dict)
    _patches: Any = None  # patches.Patches, made at install
    _np: Any = None

    # -- window ----------------------------------------------------------------------
    def install(self) -> None:
        """Wrap the drawing and seeding functions (NumPy's only if already imported)."""
        # No lock: an interrupt at the wrong line would leave it held. Each patch is
        # noted before it is made, so restore() undoes whatever part was done.
        from ..basics.patches import Patches
        from . import pypatches, workers

        self._np = sys.modules.get("numpy")
        self._patches = Patches()
        try:
            pypatches.install(self, self._patches)
            workers.install(self._patches, self)
        except BaseException:
            self._patches.restore()
            raise
        self.thread, self.on = threading.get_ident(), True
        _OPEN.append(self)

    def uninstall(self) -> None:
        self.on = False
        if self in _OPEN:
            _OPEN.remove(self)
        if self._patches is not None:
            self._patches.restore()

    def finish(self) -> dict[str, GeneratorInfo]:
        """The last boundary read; the generators seen, for the log's header."""
        if self.on:
            self._guard(self.boundary, None)
        self.on = False
        self.stack.clear()
        infos = {n: GeneratorInfo(n, "cpu", None, self.first.get(n)) for _, n in
                 self.names.values()}
        from . import workers

        try:
            parts = workers.collect(self)  # the workers' parts, after the window's own
        except Exception as e:  # a part that cannot be read: the window still closes
            parts = []
            self.emit_event("error", "", None, f"worker parts: {type(e).__name__}: {e}")
        for fields in parts:
            name = fields["generator"]
            if name not in infos:
                infos[name] = GeneratorInfo(name, "cpu", None, fields["state_before"])
            self.emit(fields)
        self.names.clear()
        self.watched.clear()
        return infos

    def active(self) -> bool:
        return self.on and threading.get_ident() == self.thread

    # -- records -------------------------------------------------------------------------
    def _guard(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # never let a recorder bug break the user's program
            self.emit_event("error", "", None, f"{type(e).__name__}: {e}")

    def name_of(self, obj: Any, kind: str, state: str) -> str:
        """The stream name of a generator object, given on first sight."""
        hit = self.names.get(id(obj))
        if hit is not None:
            return hit[1]
        if obj is random._inst:
            name = "python:random"
        elif self._np is not None and obj is self._np.random.mtrand._rand:
            name = "numpy:global"
        else:
            n = self._counts[kind] = self._counts.get(kind, 0) + 1
            name = f"{kind}#{n}"
        self.names[id(obj)] = (obj, name)  # kept alive: ids stay unique in the window
        self.first.setdefault(name, state)
        return name

    def record(self, rng: Any, op: str, args: tuple, kwargs: dict[str, Any], out: Any,
                before: str, read: Callable[[Any], str]) -> None:
        after = read(rng)
        if isinstance(rng, random.Random) and rng is not random._inst:
            op = "Random." + op.removeprefix("random.")
        name = self.name_of(rng, "python:Random", before)
        numel, shape, dtype = _count(out, args)
        owner = self.owner()
        fields = _scalar_args(args, kwargs)
        held = _held_by(owner, rng)
        if held is not None:
            fields["held_by"] = held
        site, code = frames.user_site(1)
        self._emit(owner, op=op, generator=name, state_before=before, state_after=after,
                   numel=numel, shape=shape, dtype=dtype, args=fields, site=site, code=code)

    def _emit(self, owner: Owner | None, **fields: Any) -> None:
        fields = self.fields(owner, **fields)
        if self.worker is not None:
            self.worker.draw(fields)
        else:
            self.emit(fields)

    def fields(self, owner: Owner | None, **fields: Any) -> dict[str, Any]:
        """A draw's fields (without index and step), with its owner's names."""
        model = module = kind = None
        phase = "other"
        if owner is not None and owner.module is not None:
            root = owner.root if owner.root is not None else frames.describe_stack(1).outermost
            model, module, kind = self.name_module(owner.module, root)
            phase = owner.phase
        elif owner is not None:
            kind = type(owner.dataset).__name__
            module = f"{kind}.{owner.method}"
        fields.update(module=module, module_type=kind, model=model, phase=phase,
                      target=None, device=fields.get("device", "cpu"),
                      consumed=fields["state_before"] != fields["state_after"],
                      api=fields.get("api"), discarded=False)
        return fields

    def reseed(self, rng: Any, label: str, args: tuple) -> None:
        if self.worker is not None:
            return  # torch seeds random and NumPy in each worker: expected, not logged
        name = self.name_of(rng, "python:Random", "")
        shown = ", ".join("<state>" if isinstance(a, tuple | dict) else repr(a) for a in args)
        site, _ = frames.user_site(1)
        self.emit_event("reseed", name, site, f"{label}({shown})")

    def owner(self) -> Owner | None:
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
                if _dataset_method(code, obj):
                    return Owner(dataset=obj, method=code.co_name)
            f = f.f_back
        return self.stack[-1] if self.stack else None

    # -- NumPy Generators (and RandomState objects), read at boundaries ----------------
    def watch(self, gen: Any, held_by: str | None) -> None:
        if any(w.gen is gen for w in self.watched):
            return
        state = _state(gen)
        text = np_digest(state)
        name = self.name_of(gen, "numpy:" + _kind(gen), text)
        self.watched.append(Watched(gen, name, held_by, state, text))

    def scan(self, obj: Any, label: str, depth: int = 2) -> None:
        """Watch the Generators and RandomStates ``obj`` holds as attributes (``depth``
        levels deep); NumPy's global RandomState is patched instead."""
        self.scanned.add(id(obj))
        npr = getattr(self._np, "random", None)
        if npr is None:
            return
        types = (npr.Generator, npr.RandomState)
        for attr, value in list(getattr(obj, "__dict__", {}).items()):
            if isinstance(value, types):
                if value is not npr.mtrand._rand:
                    self.watch(value, f"{label}.{attr}")
            elif depth > 1 and hasattr(value, "__dict__") and not isinstance(
                    value, nn.Module | type) and not callable(value):
                self.scan(value, f"{label}.{attr}", depth - 1)

    def boundary(self, owner: Owner | None) -> None:
        """Read every watched Generator; charge what moved to ``owner`` (or outside)."""
        for w in self.watched:
            state = _state(w.gen)
            text = np_digest(state)
            if text == w.text:
                continue
            before, old, w.last, w.text = w.last, w.text, state, text
            words = pcg64_words(before, state)
            args: dict[str, Any] = {"held_by": w.held_by} if w.held_by else {}
            self._emit(owner, op="numpy." + _kind(w.gen), generator=w.name,
                       state_before=old, state_after=text, numel=words or 0, shape=(),
                       dtype="", args=args, site=None, code=None)

    def around(self, owner: Owner, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` as a boundary pair charged to ``owner`` (a module call, a fetch)."""
        self.boundary(self.stack[-1] if self.stack else None)
        self.stack.append(owner)
        try:
            return call(*args)
        finally:
            self.stack.pop()
            self._guard(self.boundary, owner)

    def module_call(self, module: nn.Module, call: Callable[..., Any], args: tuple,
                    kwargs: dict[str, Any]) -> Any:
        """The recorder's ``nn.Module.__call__`` wrapper calls this (op level)."""
        if id(module) not in self.scanned:
            self._guard(self.scan, module, type(module).__name__, 1)
        if not self.watched or not self.active():
            return call(module, *args, **kwargs)
        return self.around(Owner(module=module, phase="forward"),
                           lambda: call(module, *args, **kwargs))


def _kind(gen: Any) -> str:
    return "Generator" if hasattr(gen, "bit_generator") else "RandomState"


def _state(gen: Any) -> Any:
    """A Generator's ``bit_generator.state``, a RandomState's ``get_state`` (as a dict)."""
    if hasattr(gen, "bit_generator"):
        return gen.bit_generator.state
    return gen.get_state(legacy=False)


def _dataset_method(code: Any, obj: Any) -> bool:
    """A map-style ``__getitem__`` of any class, or an ``IterableDataset``'s iteration."""
    if place(code.co_filename) == "stdlib":
        return False
    if code.co_name in ("__getitem__", "__getitems__"):
        return obj is not None and not isinstance(obj, random.Random)
    return code.co_name in ("__iter__", "__next__") and isinstance(obj, Dataset)


def _held_by(owner: Owner | None, rng: Any) -> str | None:
    """``"MyDataset.rng"`` when the Dataset (or module) drawing holds ``rng``."""
    if owner is None:
        return None
    obj = owner.dataset if owner.dataset is not None else owner.module
    for attr, value in getattr(obj, "__dict__", {}).items():
        if value is rng:
            return f"{type(obj).__name__}.{attr}"
    return None


def current() -> PyStreams | None:
    """The open window's streams, if any."""
    return _OPEN[-1] if _OPEN else None

