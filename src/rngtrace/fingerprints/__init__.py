"""A certificate of a resume without a second run: fingerprints of the generators.

Save :func:`fingerprint` with each checkpoint; after loading one, :func:`check_restored`
compares the live generators with it and says, per generator, restored, restored then
moved by draws, not restored, or set to another state (see :mod:`.verify`). The records
(:mod:`.model`) are small and versioned: digests, not states.

>>> import random, torch, rngtrace
>>> gen = torch.Generator().manual_seed(1)
>>> saved = rngtrace.fingerprint(sampler_generator=gen)
>>> state = (torch.get_rng_state(), random.getstate(), gen.get_state())
>>> _ = torch.rand(3), random.random(), torch.rand(2, generator=gen)  # training goes on
>>> before = rngtrace.fingerprint(sampler_generator=gen)  # resuming: before loading
>>> torch.set_rng_state(state[0]); random.setstate(state[1])  # gen's state forgotten
>>> result = rngtrace.check_restored(saved, before=before, sampler_generator=gen)
>>> result.ok, [(g.name, g.kind) for g in result.problems]
(False, [('sampler_generator', 'not-restored')])
>>> print(result.problems[0].fix)
save sampler_generator.get_state() with the checkpoint, sampler_generator.set_state() it
"""

from __future__ import annotations

from typing import Any

from ..log import Log
from .model import (
    CHECK_KINDS,
    FORMAT,
    CheckKind,
    Fingerprint,
    GeneratorCheck,
    GeneratorPrint,
    RestoreCheck,
)
from .take import take
from .verify import check

__all__ = ["CHECK_KINDS", "FORMAT", "CheckKind", "Fingerprint", "GeneratorCheck",
           "GeneratorPrint", "RestoreCheck", "check_restored", "fingerprint"]


def fingerprint(*objects: Any, **named: Any) -> Fingerprint:
    """The digests of every generator a training depends on, to save with a checkpoint.

    The process's own (torch's CPU generator; each CUDA device's, only where the
    program has started CUDA; Python's ``random``; NumPy's global generator when NumPy
    is imported) and those reachable from ``objects`` and ``named`` (DataLoaders,
    samplers, datasets, modules): torch ``Generator`` s, NumPy ``Generator`` s and
    ``RandomState`` s, ``random.Random`` s, found in instance attributes a few levels
    deep (see :mod:`.take`) and named by where they were found
    (``loader.generator``; a positional object by its class). ``to_dict()`` makes it
    JSON; ``Fingerprint.from_dict`` reads it back. Reading never changes a state.
    """
    return take(*objects, **named)


def check_restored(saved: Fingerprint | dict[str, Any], *objects: Any,
                   before: Fingerprint | dict[str, Any] | None = None,
                   log: Log | None = None, **named: Any) -> RestoreCheck:
    """Whether the generators now go on from ``saved`` (the fingerprint taken at the
    checkpoint), given the same objects (and names) :func:`fingerprint` was given.

    Call it after loading the checkpoint, before training draws (draws after the
    restore are recognised: ``drew-after-restore``). ``before``, a fingerprint taken
    before loading, tells a generator not restored from one set to another state;
    ``log``, a recording of the resume, names the lines. ``.ok``, ``.problems``,
    ``.report()`` (one line per generator, with how to fix it).
    """
    if isinstance(saved, dict):
        saved = Fingerprint.from_dict(saved)
    if isinstance(before, dict):
        before = Fingerprint.from_dict(before)
    return check(saved, take(*objects, **named), before, log)
