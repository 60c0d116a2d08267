"""Python's ``random`` and NumPy's generators, recorded next to torch's.

:mod:`.pystreams` (the streams of one window), :mod:`.pypatches` (the wrappers on
``random`` and NumPy), :mod:`.workers` (DataLoader workers' parts), :mod:`.records` (what
a record says: owner, count, arguments), :mod:`.digests` (state digests).
"""
