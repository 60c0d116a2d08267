"""The remedy: :func:`stable_init` keys every initial draw by parameter name.

:mod:`.api` is the entry point. :mod:`.build` runs a factory twice under a dispatch mode
and :mod:`.keys` learns where each draw goes and its key; :mod:`.inplace` re-initialises
a model already built (sharded or not); :mod:`.draws` makes one keyed draw (in blocks,
a DTensor's shard as its part of the whole) and :mod:`.streams` derives each generator.
"""

from .api import stable_init

__all__ = ["stable_init"]
