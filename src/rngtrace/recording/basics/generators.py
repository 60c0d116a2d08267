"""Generators seen in a window: naming, reading state, noticing changes.

:class:`Slot` (in :class:`Generators`) is the op level's: any generator a draw names,
read as bytes around each draw. :class:`DefaultGen` is the module level's: a default
generator read at module boundaries, a CUDA one as (seed, offset) without a copy.

Reading a state never changes it: ``get_state()`` returns a copy. CUDA generators are
only read once CUDA is initialised by the user's code; the recorder never initialises it.

An explicit generator is named ``generator:N`` in order of first use, unless the code that
made it gave it a name with :func:`given_name` (``stable_init``'s keyed streams, named by
their key: see docs/log-format.md), so that two runs pair such streams by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import xxhash

from ...log import GeneratorInfo

_string_at = ctypes.string_at  # a module global: one lookup less than ctypes.string_at

# Names given by code above the recorder, by generator handle, while the generator draws.
_GIVEN: dict[int, str] = {}


def handle(gen: Any) -> int:
    """A generator's identity: a new Python wrapper reaches the mode at each call, the
    handle is stable."""
    return gen._cdata if hasattr(gen, "_cdata") else id(gen)


@contextlib.contextmanager
def given_name(gen: Any, name: str) -> Iterator[None]:
    """Name ``gen`` for the op level while the block runs: a window that sees it draw for
    the first time there calls its stream ``name`` instead of ``generator:N``. Only a
    window's first sighting reads it, so a name given later changes nothing."""
    key = handle(gen)
    _GIVEN[key] = name
    try:
        yield
    finally:
        _GIVEN.pop(key, None)


@dataclass(slots=True)
class Slot:
    """One generator in one window, with the last state the recorder knows."""

    name: str
    device: str
    generator: Any  # torch.Generator, kept alive so that its handle stays unique
    last_raw: bytes | None = None
    first_text: str | None = None
    initial_seed: int | None = None
    memo: tuple[bytes, str] | None = None  # the last state digested, and its digest

    def raw(self) -> bytes | None:
        """The generator's state now as bytes (None for a device without one)."""
        return raw_state(self.generator) if self.generator is not None else None

    def text(self, raw: bytes | None) -> str | None:
        """The display form of a state read; consecutive draws share their states (one's
        after is the next one's before): each is digested once."""
        if raw is None:
            return None
        memo = self.memo
        if memo is not None and (memo[0] is raw or memo[0] == raw):
            return memo[1]
        text = state_text(raw, self.device)
        self.memo = (raw, text)
        return text

    def read(self) -> tuple[bytes | None, str | None]:
        """The generator's state now: raw bytes, and its display form."""
        raw = self.raw()
        return raw, self.text(raw)

    def info(self) -> GeneratorInfo:
        return GeneratorInfo(self.name, self.device, self.initial_seed, self.first_text)


@dataclass(slots=True)
class DefaultGen:
    """One default generator read at module boundaries (the module level), with the last
    state read (bytes on CPU, (seed, offset) on CUDA, both cheap to compare)."""

    name: str
    device: str
    generator: Any
    cuda: bool
    last: Any = None
    memo: tuple[Any, str] | None = None  # one raw state and its display form
    first: str | None = None
    seed: int | None = None

    @classmethod
    def start(cls, name: str, device: str, generator: Any, cuda: bool) -> DefaultGen:
        g = cls(name, device, generator, cuda)
        g.last = g.read()
        g.first = g.show(g.last)
        g.seed = generator.initial_seed()
        return g

    def read(self) -> Any:
        g = self.generator
        if self.cuda:
            return g.initial_seed(), g.get_offset()
        state = g.get_state()  # raw_state, inlined: this runs at every boundary
        return _string_at(state.data_ptr(), state.numel())

    def show(self, raw: Any) -> str:
        """The display form of a state read (a digest on CPU); consecutive records share
        their states (one's after is the next one's before): each is shown once."""
        memo = self.memo
        if memo is not None and (memo[0] is raw or memo[0] == raw):
            return memo[1]
        text = f"{raw[0]}:{raw[1]}" if self.cuda else state_text(raw, self.device)
        self.memo = (raw, text)
        return text

    def info(self) -> GeneratorInfo:
        return GeneratorInfo(self.name, self.device, self.seed, self.first)


def raw_state(generator: Any) -> bytes:
    """A generator's state as bytes: ``get_state()`` returns a fresh contiguous CPU uint8
    tensor, copied out with one memcpy (``bytes(storage)`` iterates byte by byte)."""
    state = generator.get_state()
    return _string_at(state.data_ptr(), state.numel())


def state_text(raw: bytes, device: str) -> str:
    """CPU (mt19937): a 64-bit digest, :data:`~rngtrace.log.CPU_STATE_DIGEST` (XXH3: 0.1 us
    for the 5 KB state, where blake2b took 3.8). CUDA (Philox): ``"SEED:OFFSET"``."""
    if device.startswith("cuda") and len(raw) == 16:
        seed, offset = struct.unpack("<Qq", raw)
        return f"{seed}:{offset}"
    return xxhash.xxh3_64_hexdigest(raw)


def reseeded_to(slot: Slot, raw: bytes | None) -> int | None:
    """The seed an explicit generator was reseeded with since its last draw, when its
    state ``raw`` is exactly the state that seed gives (``Generator.manual_seed(s)``, as
    accelerate's ``SeedableRandomSampler`` calls at each epoch: the type is immutable,
    its methods cannot be wrapped); None for another change (``set_state``, draws out of
    sight). Asked only when the state moved with no draw seen: not on the hot path."""
    gen = slot.generator
    if gen is None or raw is None:
        return None
    seed = gen.initial_seed()
    if slot.device.startswith("cuda"):
        return seed if raw == struct.pack("<Qq", seed, 0) else None
    fresh = torch.Generator()
    fresh.manual_seed(seed)
    return seed if raw_state(fresh) == raw else None


def default_generator(device: torch.device) -> Any:
    if device.type == "cpu":
        return torch.default_generator
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return None  # meta draws nothing; other backends are not read


class Generators:
    """The generators of one window, by identity."""

    def __init__(self) -> None:
        self.slots: dict[Any, Slot] = {}
        self._by_device: dict[torch.device, Slot] = {}  # default generators' slots
        self._explicit = 0
        self._taken: set[str] = set()

    def snapshot_defaults(self) -> None:
        """Note the default generators' states as the window opens."""
        self.default(torch.device("cpu"))
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i in range(torch.cuda.device_count()):
                self.default(torch.device("cuda", i))

    def default(self, device: torch.device) -> Slot:
        slot = self._by_device.get(device)  # a device hashes in C: no key to build
        if slot is not None:
            return slot
        key = (device.type, device.index)
        slot = self.slots.get(key)
        if slot is not None:
            self._by_device[device] = slot
        else:
            gen = default_generator(device)
            name = "default:cpu" if device.type == "cpu" else f"default:{_dev_str(device)}"
            slot = self._add(key, name, gen, _dev_str(device))
            self._by_device[device] = slot
        return slot

    def explicit(self, gen: torch.Generator) -> Slot:
        key = handle(gen)
        slot = self.slots.get(key)
        if slot is None:
            slot = self._add(key, self._name(key), gen, str(gen.device))
        return slot

    def _name(self, key: int) -> str:
        """A given name (the second generator given the same one in a window gets
        ``name(2)``), else ``generator:N``, numbered in order of first use."""
        given = _GIVEN.get(key)
        if given is None:
            self._explicit += 1
            return f"generator:{self._explicit}"
        name, n = given, 1
        while name in self._taken:
            n += 1
            name = f"{given}({n})"
        return name

    def _add(self, key: Any, name: str, gen: Any, device: str) -> Slot:
        self._taken.add(name)
        slot = Slot(name, device, gen)
        slot.last_raw, slot.first_text = slot.read()
        slot.initial_seed = gen.initial_seed() if gen is not None else None
        self.slots[key] = slot
        return slot

    def infos(self) -> dict[str, GeneratorInfo]:
        return {s.name: s.info() for s in self.slots.values()}

    def release(self) -> None:
        for s in self.slots.values():
            s.generator = None


def _dev_str(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    return str(device)
