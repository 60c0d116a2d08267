"""The window core: what both levels share.

:mod:`.window` (the :class:`~.window.Window` base: claiming, opening, stopping, steps,
reseeds, usage, errors), :mod:`.calls` (the ``nn.Module.__call__`` patch), :mod:`.reseed`
(seeding functions), :mod:`.distributed` (ranks of a job, per-rank file names).
"""
