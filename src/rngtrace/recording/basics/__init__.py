"""The pieces every room of :mod:`rngtrace.recording` uses; they import none of the rooms.

:mod:`.patches` (every change to torch's globals, undone together), :mod:`.imports`
(acting right after the program imports a module), :mod:`.hooks` (global hooks through
those patches), :mod:`.frames` (the stack walk: user site, module, phase),
:mod:`.places` (whose code a file holds), :mod:`.generators` (reading generator
states), :mod:`.identity` (a tensor's storage, a model's label).
"""
