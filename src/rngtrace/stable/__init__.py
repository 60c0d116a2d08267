"""The remedy: :func:`stable_init` keys every initial draw by parameter name.

:mod:`.build` runs the factory twice under a dispatch mode, :mod:`.keys` learns where each
draw goes and its key, and :mod:`.streams` derives each key's generator.
"""

from .build import stable_init

__all__ = ["stable_init"]
