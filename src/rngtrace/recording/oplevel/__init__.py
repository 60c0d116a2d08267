"""The op level, ``record()``: every random kernel call seen through a dispatch mode.

:mod:`.recorder` (:class:`~.recorder.Recorder`, what it notes at a draw), :mod:`.mode`
(the dispatch mode), :mod:`.ops` (which ops draw, their arguments), :mod:`.naming`
(module paths and state_dict keys, also during construction).
"""
