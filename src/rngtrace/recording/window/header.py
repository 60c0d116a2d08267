"""What a log says about where it was made: its header, and the default generators'
seeds as the window opens."""

from __future__ import annotations

import datetime
import platform
import sys
from typing import Any

import torch

from ..._version import __version__
from ...log import CPU_STATE_DIGEST, GeneratorInfo
from .distributed import rank_meta


def header() -> dict[str, Any]:
    """What a log says about where it was made (``"dist"``: the rank in a distributed
    job, see :mod:`.distributed`)."""
    meta: dict[str, Any] = {
        "tool": "rngtrace",
        "rngtrace": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": list(sys.argv),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_state_digest": CPU_STATE_DIGEST,
    }
    dist = rank_meta()
    if dist is not None:
        meta["dist"] = dist
    return meta


def default_generators() -> dict[str, GeneratorInfo]:
    """The default generators' seeds as a window opens (a file's header records them)."""
    gens = {"default:cpu": GeneratorInfo("default:cpu", "cpu", torch.initial_seed())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):
            name = f"default:cuda:{i}"
            gens[name] = GeneratorInfo(name, f"cuda:{i}",
                                       torch.cuda.default_generators[i].initial_seed())
    return gens
