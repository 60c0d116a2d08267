"""Hugging Face ``Trainer``: :class:`RngtraceCallback` certifies each resume.

``Trainer`` saves the RNG states in ``rng_state.pth`` (``rng_state_{rank}.pth``) and
restores them at the start of the resumed epoch; when the file is missing or fails to
load it logs a line at info level and goes on. The callback writes the fingerprint
beside it in each checkpoint folder (``rngtrace_fingerprint.json``, one per rank), and
on resume checks the generators at the first step, after the Trainer's restore and the
DataLoader's first draws. The Trainer's ``model`` is walked for generators, with
anything given to the callback; its DataLoader is not: its sampler (accelerate's
``SeedableRandomSampler``) reseeds its generator from the epoch at each epoch, and the
Trainer keeps the epoch::

    trainer = Trainer(model, args, train_dataset=data,
                      callbacks=[RngtraceCallback(record_steps=2)])
    trainer.train(resume_from_checkpoint=True)  # warns if a generator was not restored

The checkpoint looked for is ``output_dir/checkpoint-<global step>``: the Trainer's own.
"""

from __future__ import annotations

import json
import os
from typing import Any

from transformers import TrainerCallback

from .common import Certifier, rank

FILE = "rngtrace_fingerprint.json"


def file_name() -> str:
    """The fingerprint's file in a checkpoint folder (one per rank past rank 0)."""
    r = rank()
    return FILE if r == 0 else FILE.replace(".json", f"_{r}.json")


class RngtraceCallback(TrainerCallback):
    """Save a fingerprint with each checkpoint; on resume, check it once and warn
    (:class:`~rngtrace.integrations.ResumeWarning`) for each generator not restored.

    Args:
        objects, named: more objects to walk for generators (the Trainer's model
            always is).
        record_steps: record the resumed run's first N optimizer steps to
            ``output_dir/resume.rngtrace.jsonl`` (0: none).
    """

    def __init__(self, *objects: Any, record_steps: int = 0, **named: Any) -> None:
        self.core = Certifier(objects, named, record_steps)
        self._resumed: str | None = None  # the checkpoint folder resumed from
        self._checking = False

    @property
    def result(self) -> Any:
        """The :class:`~rngtrace.RestoreCheck` made on resume (None before or without)."""
        return self.core.result

    @staticmethod
    def _objects(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"model": kwargs["model"]} if kwargs.get("model") is not None else {}

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            with open(os.path.join(folder, file_name()), "w") as f:
                json.dump(self.core.saved(**self._objects(kwargs)), f)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step > 0:  # the Trainer loaded its state: a resume
            self._resumed = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            self._checking = True
            if self.core.record_path is None:
                self.core.record_path = os.path.join(args.output_dir, "resume.rngtrace.jsonl")

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._checking and self.core.result is None:
            self.core.before(**self._objects(kwargs))  # before the Trainer's restore

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._checking or self._resumed is None:
            return
        self._checking = False
        path = os.path.join(self._resumed, file_name())
        if os.path.exists(path):
            with open(path) as f:
                self.core.verify(json.load(f), state.global_step, **self._objects(kwargs))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.core.close()
