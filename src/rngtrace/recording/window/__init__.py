"""The window core: what both levels share, and what installs the other rooms' patches.

:mod:`.window` (the :class:`~.window.Window` base: opening, stopping, teardown, the
module-call wrapper, steps, reseeds, usage, errors), :mod:`.notes` (the note buffer),
:mod:`.sinks` (where draws go), :mod:`.claims` (one window per process), :mod:`.header`
(the log's header), :mod:`.calls` (the ``nn.Module.__call__`` patch), :mod:`.reseed`
(seeding functions), :mod:`.distributed` (ranks of a job, per-rank file names).
"""
