"""Draws of ``torch.compile``-d code.

:mod:`.seedmaps` (Inductor's seed maps, which compiled graph runs), :mod:`.draws` (naming
the draws of compiled code).
"""
