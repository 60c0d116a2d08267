"""Reading the generators a training depends on into a :class:`~.model.Fingerprint`.

The process's own generators (torch's CPU one, each CUDA device's once the program has
started CUDA, ``random``, NumPy's global one when NumPy is imported), then those reachable
from the objects given: a DataLoader, its sampler and dataset, a module and its
submodules. The walk reads instance attributes only (``vars(obj)``: no property runs),
lists, tuples and dicts among them, a few levels deep and a bounded number of values;
every module of a ``torch.nn.Module`` is looked at (:data:`DEPTH`, :data:`WIDTH` and
:data:`BUDGET` bound the walk). Reading a state never changes it.
"""

from __future__ import annotations

import random
import struct
import sys
from typing import Any

import torch

from ..recording.basics.generators import raw_state, state_text
from ..recording.streams.digests import np_digest, np_global_digest, py_digest
from .model import Fingerprint, GeneratorPrint
from .twister import block_digest, next_block_digest

# attribute levels below an object given (accelerate's loader -> batch_sampler (shard)
# -> batch_sampler -> sampler -> generator)
DEPTH = 4
WIDTH = 64  # values looked at in one list, tuple or dict
BUDGET = 10_000  # objects looked into, at most, for one fingerprint
_SKIP = (str, bytes, int, float, bool, type(None), torch.Tensor)


def take(*objects: Any, **named: Any) -> Fingerprint:
    """The fingerprint of the process's generators and those reachable from
    ``objects`` (named by class) and ``named`` (named by keyword)."""
    found: dict[int, tuple[str, Any]] = {}  # identity -> (path, generator)
    for i, obj in enumerate(objects):
        _walk(obj, type(obj).__name__ if sum(type(o) is type(obj) for o in objects) == 1
              else f"{type(obj).__name__}[{i}]", DEPTH, found, set())
    for name, obj in named.items():
        _walk(obj, name, DEPTH, found, set())
    prints = _globals()
    own = {_identity(g) for g in _global_objects()}
    prints += [read(path, g) for key, (path, g) in found.items() if key not in own]
    return Fingerprint(tuple(prints))


def _global_objects() -> list[Any]:
    out: list[Any] = [torch.default_generator, random._inst]
    np = sys.modules.get("numpy")
    if np is not None:
        out.append(np.random.mtrand._rand)
    return out


def _globals() -> list[GeneratorPrint]:
    out = [read("default:cpu", torch.default_generator)]
    if torch.cuda.is_initialized():  # never start CUDA for a fingerprint
        for i in range(torch.cuda.device_count()):
            out.append(read(f"default:cuda:{i}", torch.cuda.default_generators[i]))
    out.append(read("python:random", random._inst))
    np = sys.modules.get("numpy")
    if np is not None:
        out.append(read("numpy:global", np.random.mtrand._rand))
    return out


def _identity(g: Any) -> int:
    return getattr(g, "_cdata", id(g)) if isinstance(g, torch.Generator) else id(g)


def is_generator(v: Any) -> bool:
    if isinstance(v, torch.Generator):
        return True
    if isinstance(v, random.Random):
        return not isinstance(v, random.SystemRandom)
    np = sys.modules.get("numpy")
    return np is not None and isinstance(v, np.random.Generator | np.random.RandomState)


def _walk(obj: Any, path: str, depth: int, found: dict[int, tuple[str, Any]],
          seen: set[int]) -> None:
    if isinstance(obj, _SKIP):
        return
    if is_generator(obj):  # found again: the shorter path names it
        key = _identity(obj)
        if key not in found or path.count(".") < found[key][0].count("."):
            found[key] = (path, obj)
        return
    if id(obj) in seen or len(seen) >= BUDGET:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        for name, m in obj.named_modules():
            for attr, v in _attrs(m):  # its own attributes, not _modules, _parameters ...
                if not attr.startswith("_") and not isinstance(v, torch.nn.Module):
                    _walk(v, _join(path, name, attr), 1, found, seen)
        return
    if depth <= 0:
        return
    for attr, v in _attrs(obj):
        _walk(v, f"{path}.{attr}" if attr[0] != "[" else f"{path}{attr}", depth - 1,
              found, seen)


def _attrs(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, list | tuple):
        return [(f"[{i}]", v) for i, v in enumerate(obj[:WIDTH])]
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in list(obj.items())[:WIDTH]]
    try:
        d = vars(obj)
    except TypeError:  # no __dict__ (slots, C types): not looked into
        return []
    return [(k, v) for k, v in list(d.items())[:WIDTH] if not k.startswith("__")]


def _join(path: str, module: str, attr: str) -> str:
    return ".".join(p for p in (path, module, attr) if p)


def read(name: str, g: Any) -> GeneratorPrint:
    """One generator's print (see :class:`~.model.GeneratorPrint`)."""
    if isinstance(g, torch.Generator):
        return _torch(name, g)
    if isinstance(g, random.Random):
        _, words, _ = random.Random.getstate(g)
        return GeneratorPrint(name, "python", py_digest(g), None, block_digest(words[:624]),
                              next_block_digest(words[:624]), words[624])
    if hasattr(g, "bit_generator"):
        state = g.bit_generator.state
        inner = state.get("state", {})
        pcg = ((inner["state"], inner["inc"]) if state.get("bit_generator") == "PCG64"
               and isinstance(inner, dict) else None)
        return GeneratorPrint(name, "numpy", np_digest(state), pcg=pcg)
    _, key, pos, _, _ = g.get_state(legacy=True)  # a RandomState (the global one too)
    words = [int(w) for w in key]
    digest = np_global_digest(g)
    return GeneratorPrint(name, "numpy-legacy", digest, None, block_digest(words),
                          next_block_digest(words), int(pos))


def _torch(name: str, g: torch.Generator) -> GeneratorPrint:
    raw = raw_state(g)
    device = str(g.device)
    if device.startswith("cuda") and len(raw) == 16:
        seed, offset = struct.unpack("<Qq", raw)
        return GeneratorPrint(name, "torch", state_text(raw, device), seed, offset=offset)
    # mt19937 (5056 bytes): seed (u64), left, seeded (i32), next (u64), 624 words (u64);
    # words used in the block: 625 - left (624 right after seeding: the next draw twists)
    seed, left, _, _ = struct.unpack_from("<QiiQ", raw, 0)
    words = list(struct.unpack_from("<624Q", raw, 24))
    return GeneratorPrint(name, "torch", state_text(raw, "cpu"), seed, block_digest(words),
                          next_block_digest(words), 625 - left)

