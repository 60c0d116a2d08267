"""rngtrace: see which module drew which random numbers, and why two runs differ.

>>> import torch, rngtrace
>>> with rngtrace.record() as log:
...     model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.1))
>>> [d.target for d in log.draws]
['0.weight', '0.bias']
"""

from .diff import Diff, Hunk, diff
from .errors import LogFormatError, RecordError, RngtraceError, StableInitError
from .graph import to_dot
from .log import Draw, Event, GeneratorInfo, Log, ModuleStats
from .logfile import load
from .recorder import __version__, record
from .stable import stable_init

__all__ = [
    "Diff",
    "Draw",
    "Event",
    "GeneratorInfo",
    "Hunk",
    "Log",
    "LogFormatError",
    "ModuleStats",
    "RecordError",
    "RngtraceError",
    "StableInitError",
    "__version__",
    "diff",
    "load",
    "record",
    "stable_init",
    "to_dot",
]
