"""The log-file format: its version, limits, and the table of a draw record's fields.

Line 1 is a header ``{"rngtrace_log": 1, "level": ..., "meta": {...}, "gens": {...}}``;
every other line is one record ``{"t": KIND, ...}``: ``"d"`` a draw, ``"e"`` an event,
``"p"`` a patch (the final names of a draw written earlier with provisional ones), ``"u"``
usage seen (modules called, parameters with a gradient) and ``"end"``. Draw records hold
only the fields that changed since the previous draw (:data:`_DRAW` gives each field's
first value). The full description is ``docs/log-format.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..log import EVENT_KINDS, LEVELS, PHASES

# Format versions (the integer in the header's "rngtrace_log" marker):
#   1  (rngtrace 0.1) first version: header, draw/event/patch/usage/end records.
# Within a version, readers ignore fields and record kinds they do not know, so a writer
# may add optional ones; anything an older reader would misread needs a new version.
FORMAT_VERSION = 1
MARKER = "rngtrace_log"
MAX_LINE = 1 << 20  # bytes; longer lines are refused (a 1 MiB draw is not a draw)
# Limits that keep hostile input bounded (docs/log-format.md); far above any real log.
MAX_RECORDS = 100_000_000  # lines per file (about 10 to 17 GB of draws)
MAX_DEPTH = 128  # dotted parts in a module path, a target or a usage path
MAX_PATH = 4096  # characters in such a path
_MAX_CODE = 4096  # source lines longer than this are cut when written (the one lossy case)
_USAGE_CHUNK = 1000  # paths per usage record, so that no line grows with the model

_REQ: Any = object()  # marks a required field


def _int(v: Any) -> bool:
    return type(v) is int and 0 <= v < 1 << 63


def _str(v: Any) -> bool:
    return type(v) is str


def _ostr(v: Any) -> bool:
    return v is None or type(v) is str


def _oint(v: Any) -> bool:
    return v is None or _int(v)


def _bool(v: Any) -> bool:
    return type(v) is bool


def _shape(v: Any) -> bool:
    return type(v) is list and len(v) <= 64 and all(_int(x) for x in v)


def _oshape(v: Any) -> bool:
    return v is None or _shape(v)


def _args(v: Any) -> bool:
    return type(v) is dict and all(type(x) in (bool, int, float, str) for x in v.values())


# Fields with a fixed vocabulary take only its words: a newer word needs a new version.
def _phase(v: Any) -> bool:
    return type(v) is str and v in PHASES


def _level(v: Any) -> bool:
    return type(v) is str and v in LEVELS


def _event_kind(v: Any) -> bool:
    return type(v) is str and v in EVENT_KINDS


# Draw fields: (key in the file, Draw attribute, check, value before the first draw).
# In a draw record an absent key means "as in the previous draw record" (the value in
# this table for the first one; _REQ: the first draw must give it). Three keys differ:
# "n" absent means prod(shape); "sb" absent means the previous "sa" of the same
# generator; "cd" absent means the code last written for the same site. Patch records
# stand alone: absent keys take this table's values, "sb" and "cd" are always written.
_DRAW: tuple[tuple[str, str, Callable[[Any], bool], Any], ...] = (
    ("o", "op", _str, _REQ),
    ("m", "module", _ostr, None),
    ("mt", "module_type", _ostr, None),
    ("tg", "target", _ostr, None),
    ("ph", "phase", _phase, _REQ),
    ("st", "step", _int, 0),
    ("sh", "shape", _shape, _REQ),
    ("dt", "dtype", _str, "float32"),
    ("dv", "device", _str, "cpu"),
    ("a", "args", _args, {}),
    ("g", "generator", _str, "default:cpu"),
    ("sa", "state_after", _ostr, None),
    ("c", "consumed", _bool, True),
    ("s", "site", _ostr, None),
    ("api", "api", _ostr, None),
    ("md", "model", _ostr, None),
    ("x", "discarded", _bool, False),
    ("w", "worker", _oint, None),
    ("cp", "copied", _bool, False),
    ("ls", "local_shape", _oshape, None),
    ("lo", "local_offset", _oshape, None),
    ("pl", "placement", _ostr, None),
    ("gr", "graph", _ostr, None),
    ("rp", "replay", _bool, False),
)
_FIRST = {key: first for key, _, _, first in _DRAW}


def _same(a: Any, b: Any) -> bool:
    """Equal, and written the same (1 is not 1.0 or True, -0.0 is not 0.0)."""
    if type(a) is not type(b) or a != b:
        return False
    if type(a) is dict:
        return all(type(x) is type(b[k]) and (type(x) is not float or str(x) == str(b[k]))
                   for k, x in a.items())
    return True


