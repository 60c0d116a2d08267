"""Lightning: :class:`RngtraceCallback` certifies each resume.

Lightning keeps no RNG state in its checkpoints and restores none (its ``Trainer`` only
isolates the sanity check's draws, ``isolate_rng``), so a resumed training draws from
wherever the new process's seeding left the generators. The callback keeps the
fingerprint in the checkpoint dict (under ``"rngtrace"``) and, when ``fit`` resumes
from it, checks the generators as training starts. To restore the states, use the
checkpoint hooks Lightning documents for keeping anything in a checkpoint
(``on_save_checkpoint`` / ``on_load_checkpoint``, in the LightningModule or a callback)::

    def on_save_checkpoint(self, checkpoint):
        checkpoint["rng"] = (torch.get_rng_state(), random.getstate(), np.random.get_state())

    def on_load_checkpoint(self, checkpoint):
        torch.set_rng_state(checkpoint["rng"][0])
        random.setstate(checkpoint["rng"][1])
        np.random.set_state(checkpoint["rng"][2])

Works with ``lightning`` (``lightning.pytorch``) and ``pytorch_lightning``: the callback
derives from the one the program imported (import it before this module). In a
distributed job the checkpoint holds rank 0's fingerprint: rank 0 is checked.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from .common import KEY, Certifier


def _base() -> Any:
    """Lightning's ``Callback``, from the package the program uses."""
    for name in ("lightning.pytorch", "pytorch_lightning"):
        if name in sys.modules:
            return sys.modules[name].Callback
    for name in ("pytorch_lightning", "lightning.pytorch"):
        try:
            return importlib.import_module(name).Callback
        except ImportError:
            continue
    raise ImportError("rngtrace.integrations.lightning needs lightning or pytorch_lightning")


class RngtraceCallback(_base()):  # type: ignore[misc]
    """Keep a fingerprint in each checkpoint; on resume, check it once and warn
    (:class:`~rngtrace.integrations.ResumeWarning`) for each generator not restored.

    Args:
        objects, named: more objects to walk for generators (the LightningModule and
            the train DataLoader always are).
        record_steps: record the first N optimizer steps of each ``fit`` (a resumed
            one's from before its checkpoint loads) to ``record_path`` (default
            ``resume.rngtrace.jsonl``; 0: none).
    """

    def __init__(self, *objects: Any, record_steps: int = 0, record_path: str | None = None,
                 **named: Any) -> None:
        super().__init__()
        self.core = Certifier(objects, named, record_steps, record_path)
        self._saved: Any = None

    @property
    def result(self) -> Any:
        """The :class:`~rngtrace.RestoreCheck` made on resume (None before or without)."""
        return self.core.result

    @staticmethod
    def _objects(trainer: Any, pl_module: Any) -> dict[str, Any]:
        out = {"model": pl_module}
        if trainer.train_dataloader is not None:
            out["train_dataloader"] = trainer.train_dataloader
        return out

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":  # before a checkpoint loads (whether one will is not known yet)
            self.core.before(model=pl_module)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[KEY] = self.core.saved(**self._objects(trainer, pl_module))

    def on_load_checkpoint(self, trainer: Any, pl_module: Any,
                           checkpoint: dict[str, Any]) -> None:
        self._saved = checkpoint.get(KEY)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._saved is not None:
            self.core.verify(self._saved, trainer.global_step,
                             **self._objects(trainer, pl_module))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.core.close()
