"""The Mersenne Twister's block, digested: what tells "drew since" from "elsewhere".

torch's CPU generator, Python's ``random`` and NumPy's legacy generator are MT19937: 624
words used one after another, then regenerated at once (the *twist*). A state that a
restore set and a few draws moved keeps the block (its position grows) or, past its end,
holds the block's twist. Their digests and the position are enough to recognise it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

_N, _M = 624, 397
_UPPER, _LOWER, _MATRIX = 0x80000000, 0x7FFFFFFF, 0x9908B0DF


def block_digest(words: Sequence[int]) -> str:
    """The 624 words of a block (32-bit values) as a 16-hex-digit digest."""
    return hashlib.blake2b(struct.pack(f"<{_N}I", *words), digest_size=8).hexdigest()


def twist(words: Sequence[int]) -> list[int]:
    """The block that follows ``words`` (MT19937's regeneration).

    >>> import random
    >>> r = random.Random(5)
    >>> _, words, _ = r.getstate()
    >>> _ = [r.getrandbits(32) for _ in range(624 - words[624])]
    >>> twist(words[:624]) == list(r.getstate()[1][:624]) or words[624] == 624
    True
    """
    mt = list(words)
    for i in range(_N):
        y = (mt[i] & _UPPER) | (mt[(i + 1) % _N] & _LOWER)
        mt[i] = mt[(i + _M) % _N] ^ (y >> 1) ^ (_MATRIX if y & 1 else 0)
    return mt


def next_block_digest(words: Sequence[int]) -> str:
    return block_digest(twist(words))
