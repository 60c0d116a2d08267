"""The pieces every room of :mod:`rngtrace.recording` uses; they import none of the rooms.

:mod:`.patches` (every change to torch's globals, undone together), :mod:`.hooks` (global
hooks through those patches), :mod:`.frames` (the stack walk: user site, module, phase),
:mod:`.generators` (reading generator states).
"""
