"""rngtrace: see which module drew which random numbers, and why two runs differ.

>>> import torch, rngtrace
>>> with rngtrace.record() as log:
...     model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.1))
>>> [d.target for d in log.draws]
['0.weight', '0.bias']

The pipeline, one subpackage a stage: :mod:`rngtrace.recording` makes a :class:`Log`
(:mod:`rngtrace.log`; :mod:`rngtrace.summary` writes its text), :mod:`rngtrace.logfile`
saves and loads it, :mod:`rngtrace.diffing` compares two, :mod:`rngtrace.ranks` the ranks
of one job, :mod:`rngtrace.checking` finds hazards in one run, :mod:`rngtrace.graph` draws
them, :mod:`rngtrace.html` makes pages of them, :mod:`rngtrace.stable` is the remedy,
:mod:`rngtrace.fingerprints` certifies a resume without a second run,
:mod:`rngtrace.integrations` does it in Hugging Face's Trainer, Lightning and accelerate,
and :mod:`rngtrace.cli` and :mod:`rngtrace.pytest_plugin` use only this public API.
"""

from typing import TYPE_CHECKING, Any

from . import log as _log
from ._version import __version__
from .checking import CheckReport, Evidence, Finding, check
from .diffing import Cause, CauseKind, Diff, Hunk, HunkKind, Stream, Unused, diff
from .errors import (
    IncomparableLogsError,
    LogFormatError,
    RecordError,
    RngtraceError,
    StableInitError,
)
from .graph import to_dot, to_networkx
from .html import notebook_html as _notebook_html
from .html import to_html
from .log import Draw, Event, EventKind, FileInfo, GeneratorInfo, Level, Log, ModuleStats, Phase
from .logfile import load, save
from .ranks import RankReport, compare_ranks
from .summary import summary as _summary

# A Log is data and imports nothing above it; its convenience methods (print(log),
# log.save(path), log.to_networkx(), a notebook's display) get the functions here, where
# every layer is at hand, and before any log exists: see rngtrace.log.provide.
_log.provide(_log.Conveniences(summary=_summary, save=save, to_networkx=to_networkx,
                               html=_notebook_html))

if TYPE_CHECKING:
    from .fingerprints import (
        Fingerprint,
        GeneratorCheck,
        RestoreCheck,
        check_restored,
        fingerprint,
    )
    from .recording import record
    from .stable import stable_init

# Reading, comparing and drawing logs needs no torch; recording does, and so does
# reading live generators (``fingerprint``). ``record``, ``stable_init`` and the
# fingerprints are imported on first use, so that ``rngtrace show`` and the pytest
# plugin (loaded by every pytest run where rngtrace is installed) do not import torch.
_LAZY = {"record": ".recording", "stable_init": ".stable", "fingerprint": ".fingerprints",
         "check_restored": ".fingerprints", "Fingerprint": ".fingerprints",
         "GeneratorCheck": ".fingerprints", "RestoreCheck": ".fingerprints"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rngtrace' has no attribute {name!r}")
    import importlib
    import warnings

    with warnings.catch_warnings():  # torch's, when NumPy is missing: none of ours
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Cause",
    "CauseKind",
    "CheckReport",
    "Diff",
    "Draw",
    "Event",
    "EventKind",
    "Evidence",
    "FileInfo",
    "Finding",
    "Fingerprint",
    "GeneratorCheck",
    "GeneratorInfo",
    "Hunk",
    "HunkKind",
    "IncomparableLogsError",
    "Level",
    "Log",
    "LogFormatError",
    "ModuleStats",
    "Phase",
    "RankReport",
    "RecordError",
    "RestoreCheck",
    "RngtraceError",
    "StableInitError",
    "Stream",
    "Unused",
    "__version__",
    "check",
    "check_restored",
    "compare_ranks",
    "diff",
    "fingerprint",
    "load",
    "record",
    "save",
    "stable_init",
    "to_dot",
    "to_html",
    "to_networkx",
]
