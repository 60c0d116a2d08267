"""Digests of Python's and NumPy's generator states, and how far a PCG64 stream moved.

A record's ``state_before``/``state_after`` are 16-hex-digit blake2b digests of the
state; reading a state never changes it.

>>> import random
>>> py_digest(random.Random(0)) == py_digest(random.Random(0)) != py_digest(random.Random(1))
True
"""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Any

_MULT = 0x2360ED051FC65DA44385DF649FCCF645  # PCG64's multiplier (numpy pcg64.h)
_MASK = (1 << 128) - 1


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
