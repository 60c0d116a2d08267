"""Resume checks where users resume: Hugging Face's Trainer, Lightning, accelerate.

Each integration saves a :func:`rngtrace.fingerprint` with every checkpoint and, when a
training resumes from one, checks with :func:`rngtrace.check_restored` that every
generator goes on from the checkpoint's state; if one does not, it warns once
(:class:`ResumeWarning`), one line per generator, with how to fix it. Each can also
record the resumed run's first N optimizer steps (``record_steps=N``) to compare with
the uninterrupted run (``rngtrace diff FULL RESUMED --resumed-at K``).

- :mod:`.transformers`: ``RngtraceCallback``, a ``TrainerCallback``;
- :mod:`.lightning`: ``RngtraceCallback``, a Lightning ``Callback``;
- :mod:`.accelerate`: ``watch(accelerator)``, through ``register_for_checkpointing``.

rngtrace depends on none of these frameworks: each module imports its framework, and
only it. They use rngtrace's public API only.
"""

from __future__ import annotations

from .common import KEY, Certifier, ResumeWarning

__all__ = ["KEY", "Certifier", "ResumeWarning"]
