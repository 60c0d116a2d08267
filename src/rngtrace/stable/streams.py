"""The streams of :func:`rngtrace.stable_init`, and the stand-ins of its first build.

:func:`keyed_generator` makes the generator of one draw (or of one block of a big
draw) from ``(seed, key, ordinal, block)`` alone, and :func:`stream_name` names it;
:func:`with_generator` finds the overload of an op that takes a generator; ``FILLS`` maps
the big draws to cheap constant fills for the first build.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable
from typing import Any

import torch

_DOMAIN = b"rngtrace.stable_init.v1\x00"
_MT_OFFSET, _MT_WORDS, _CPU_STATE = 24, 624, 5056
_CHECK_SEED = 20260101


def _init_genrand(seed: int) -> list[int]:
    """mt19937's own seeding (init_genrand), to check where torch keeps the state."""
    s = [seed & 0xFFFFFFFF]
    for j in range(1, _MT_WORDS):
        s.append((1812433253 * (s[-1] ^ (s[-1] >> 30)) + j) & 0xFFFFFFFF)
    return s


@functools.cache
def _cpu_template() -> bytes | None:
    """A freshly seeded CPU state, if its layout is the one this module writes:
    (seed u64, left i32, seeded i32, next u64, state u64[624], ...). None otherwise, and
    CPU streams then fall back to ``manual_seed`` (whose seeds have 32 effective bits)."""
    g = torch.Generator()
    g.manual_seed(_CHECK_SEED)
    raw = bytes(g.get_state().tolist())  # bytes(storage) reads byte by byte: 200x slower
    if len(raw) != _CPU_STATE:
        return None
    head = struct.unpack_from("<QiiQ", raw, 0)
    words = list(struct.unpack_from(f"<{_MT_WORDS}Q", raw, _MT_OFFSET))
    if head != (_CHECK_SEED, 1, 1, 0) or words != _init_genrand(_CHECK_SEED):
        return None
    return raw


def keyed_generator(seed: int, key: str, ordinal: int | str, device: torch.device,
                    block: int = 0) -> torch.Generator:
    """The generator of draw ``ordinal`` into ``key`` (of its ``block``-th block of
    :data:`~rngtrace.stable.draws.BLOCK` elements): a function of its arguments only.

    CPU: the whole mt19937 state (624 words) comes from SHAKE-256, so streams do not
    collide the way 32-bit seeds would. Other devices: ``manual_seed`` with 64 bits
    (Philox takes them all). Block 0's material is the draw's own (as before blocks
    existed), so a draw of one block keeps its values.
    """
    tail = f"\x00{block}" if block else ""
    material = _DOMAIN + f"{seed}\x00{ordinal}\x00{key}{tail}".encode()
    g = torch.Generator(device=device)
    template = _cpu_template() if device.type == "cpu" else None
    if template is None:
        g.manual_seed(int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(),
                                     "little"))
        return g
    digest = hashlib.shake_256(material).digest(8 + 4 * _MT_WORDS)
    buf = bytearray(template)
    struct.pack_into("<Q", buf, 0, int.from_bytes(digest[:8], "little"))
    struct.pack_into(f"<{_MT_WORDS}Q", buf, _MT_OFFSET,
                     *struct.unpack_from(f"<{_MT_WORDS}I", digest, 8))
    g.set_state(torch.frombuffer(buf, dtype=torch.uint8))
    return g


def stream_name(seed: int, key: str, ordinal: int | str, block: int = 0) -> str:
    """How a log names the stream of :func:`keyed_generator` with the same arguments:
    ``stable:<key>@<seed>``, then ``#<ordinal>`` from the second draw into the key on
    (``#1.2``: the second draw lent by the key's tensor after its first draw), and
    ``/<block>`` from a big draw's second block on.

    >>> stream_name(0, "blocks.0.attn.qkv.weight", 0), stream_name(7, "wte.weight", 1, 3)
    ('stable:blocks.0.attn.qkv.weight@0', 'stable:wte.weight@7#1/3')
    >>> stream_name(0, "pos", "1.2")
    'stable:pos@0#1.2'
    """
    return (f"stable:{key}@{seed}" + (f"#{ordinal}" if ordinal else "")
            + (f"/{block}" if block else ""))


_SIBLINGS: dict[Any, Any] = {}


def with_generator(func: Any) -> Any:
    """The overload of ``func``'s packet that takes the same arguments plus a keyword
    ``generator`` (``aten::randn`` -> ``aten::randn.generator``), or None."""
    try:
        return _SIBLINGS[func]
    except KeyError:
        pass
    found = None
    want = [(a.name, str(a.type)) for a in func._schema.arguments]
    packet = func.overloadpacket
    for name in packet.overloads():
        o = getattr(packet, name)
        args = o._schema.arguments
        gens = [a for a in args if "Generator" in str(a.type)]
        if len(gens) == 1 and gens[0].kwarg_only and \
                [(a.name, str(a.type)) for a in args if a is not gens[0]] == want:
            found = o
            break
    _SIBLINGS[func] = found
    return found


def _arg(args: tuple, kwargs: dict, pos: int, name: str, default: Any) -> Any:
    if pos < len(args):
        return args[pos]
    return kwargs.get(name, default)


_FACTORY_KW = ("dtype", "layout", "device", "pin_memory")


def _fill_inplace(pos: int, name: str, default: float) -> Callable[[tuple, dict], Any]:
    def fill(args: tuple, kwargs: dict) -> Any:
        return args[0].fill_(_arg(args, kwargs, pos, name, default))
    return fill


def _zeros(args: tuple, kwargs: dict) -> Any:
    return torch.zeros(args[0], **{k: kwargs[k] for k in _FACTORY_KW if k in kwargs})


def _zeros_like(args: tuple, kwargs: dict) -> Any:
    kw = {k: kwargs[k] for k in (*_FACTORY_KW, "memory_format") if k in kwargs}
    return torch.zeros_like(args[0], **kw)


def _fills() -> dict[Any, Callable[[tuple, dict], Any]]:
    """Cheap stand-ins for the draws that fill big tensors, used by the first build,
    whose values nobody keeps. Each writes a value inside the distribution's support
    (uniform's lower bound, normal's mean), so rejection loops such as
    ``trunc_normal_``'s accept at once."""
    a = torch.ops.aten
    return {
        a.uniform_.default: _fill_inplace(1, "from", 0.0),
        a.normal_.default: _fill_inplace(1, "mean", 0.0),
        a.randn.default: _zeros, a.randn.generator: _zeros,
        a.rand.default: _zeros, a.rand.generator: _zeros,
        a.randn_like.default: _zeros_like, a.randn_like.generator: _zeros_like,
        a.rand_like.default: _zeros_like, a.rand_like.generator: _zeros_like,
    }


FILLS = _fills()
