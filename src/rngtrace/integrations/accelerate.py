"""accelerate: :func:`watch` certifies each ``load_state``.

``Accelerator.save_state`` writes ``random_states_{process}.pkl`` (Python, NumPy, torch's
CPU generator and one device backend's); ``load_state`` restores them, then loads the
objects registered with ``register_for_checkpointing``. :func:`watch` registers one such
object: its ``state_dict`` is the fingerprint, taken as the state is saved; its
``load_state_dict`` checks it, right after the restore. A ``register_load_state_pre_hook``
notes the states before loading (``before``), so that a generator not restored is told
from one set to another state::

    accelerator = Accelerator()
    model, opt, loader = accelerator.prepare(model, opt, loader)
    resume = watch(accelerator, loader=loader)  # before save_state / load_state
    accelerator.load_state("ckpt")  # warns if a generator was not restored
    resume.result.ok

accelerate saves registered objects from the main process only: the check runs there.
"""

from __future__ import annotations

from typing import Any

from .common import Certifier


class Watch:
    """The object :func:`watch` registers with the accelerator (see the module doc)."""

    def __init__(self, core: Certifier, accelerator: Any) -> None:
        self.core = core
        self._accelerator = accelerator

    @property
    def result(self) -> Any:
        """The :class:`~rngtrace.RestoreCheck` of the last ``load_state`` (or None)."""
        return self.core.result

    def state_dict(self) -> dict[str, Any]:
        return self.core.saved()

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.core.result = None  # a new load: a new check
        self.core.verify(saved, None)

    def before_load(self, models: Any, input_dir: str) -> None:
        self.core.before()

    def close(self) -> None:
        """End the recording of the first steps, if one was started."""
        self.core.close()


def watch(accelerator: Any, *objects: Any, record_steps: int = 0,
          record_path: str | None = None, **named: Any) -> Watch:
    """Save a fingerprint with each ``accelerator.save_state`` and check it at each
    ``load_state``, warning once (:class:`~rngtrace.integrations.ResumeWarning`) for each
    generator not restored. ``objects``/``named``: what to walk for generators
    (DataLoaders, models). ``record_steps``: record the first N optimizer steps after a
    ``load_state`` (from just before it) to ``record_path`` (default
    ``resume.rngtrace.jsonl``); :meth:`Watch.close` ends it early.

    Call it in the saving and in the resuming run alike, in the same order among
    other ``register_for_checkpointing`` calls (accelerate matches them by position).
    """
    w = Watch(Certifier(objects, named, record_steps, record_path), accelerator)
    accelerator.register_for_checkpointing(w)
    accelerator.register_load_state_pre_hook(w.before_load)
    return w
