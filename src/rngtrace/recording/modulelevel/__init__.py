"""The module level, ``record(level="module")``: generator states read around module calls.

:mod:`.recorder` (:class:`~.recorder.ModuleRecorder`), :mod:`.quiet` (learned quiet
calls), :mod:`.paths` (which calls are skipped, how called modules are named).
"""
