"""Draws of ``torch.compile``-d code (docs/compile.md).

:mod:`.seedmaps` (Inductor's seed maps, which compiled graph runs), :mod:`.draws` (naming
the draws of compiled code), :mod:`.runs` (what the op level writes while compiled code
runs), :mod:`.loaded` (what of the compiler stack is loaded, and keeping it unloaded).
"""
