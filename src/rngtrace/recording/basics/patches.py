"""Every change a window makes to torch's globals, made and undone in one place.

A window replaces attributes (``nn.Module.__call__``, ``torch.manual_seed`` and the other
public seeding functions, ``torch.distributed.destroy_process_group``, the DataLoader's
fetchers, and ``random``'s and NumPy's drawing functions when Python streams are recorded)
and registers global hooks (optimizer steps, module registrations); what it installs for
compiled code waits for the program to import torch's compiler stack (a finder on
``sys.meta_path``, :meth:`Patches.after_import`). :class:`Patches` holds them all and
undoes them together, with these rules:

- **ownership**: an attribute is put back only if it still holds rngtrace's replacement.
  If other code replaced it on top of ours meanwhile, ours stays in that chain (every
  replacement turns into a pass-through when its window closes) and a warning says so:
  cutting the other code out would change what the program does.
- **rollback**: each change is noted *before* it is made, so that :meth:`Patches.restore`
  undoes whatever part of an installation happened, whatever line it stopped at (an
  exception or a ``KeyboardInterrupt``); the windows call it when ``__enter__`` fails.
- **idempotent**: :meth:`Patches.restore` may run again after it was interrupted; a
  second run finishes the job and changes nothing that the first one finished.
- **threads**: :meth:`Patches.restore` may run in two threads at once (a window stopped
  by an optimizer step in another thread while its own thread closes it): each step
  checks before it acts, so the second run changes nothing. No lock is taken: an
  interrupt at the wrong line would leave it held.

Example::

    >>> import torch
    >>> from rngtrace.recording.basics.patches import Patches
    >>> seed = torch.manual_seed
    >>> p = Patches()
    >>> p.replace(torch, "manual_seed", lambda s: seed(s))
    >>> torch.manual_seed is seed
    False
    >>> p.restore()
    >>> torch.manual_seed is seed
    True
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

from torch import nn
from torch.optim import optimizer as _optim

from .imports import AfterImport

_MISSING = object()


def _hook_dicts() -> list[dict[int, Any]]:
    """PyTorch's global hook tables that a window may add to (see :meth:`Patches.hook`)."""
    m = nn.modules.module
    return [_optim._global_optimizer_post_hooks, _optim._global_optimizer_pre_hooks,
            m._global_module_registration_hooks, m._global_parameter_registration_hooks,
            m._global_buffer_registration_hooks]


class Patches:
    """Attributes replaced and global hooks added for one window, undone together."""

    def __init__(self) -> None:
        # (owner, name, original or _MISSING, replacement), in the order made
        self._attrs: list[tuple[Any, str, Any, Any]] = []
        self._hooks: list[tuple[Callable[..., Any], Any]] = []  # (hook, handle or None)
        self._finders: list[AfterImport] = []  # on sys.meta_path

    def replace(self, owner: Any, name: str, replacement: Any) -> None:
        """Set ``owner.name`` to ``replacement``; :meth:`restore` puts the original back."""
        self._attrs.append((owner, name, vars(owner).get(name, _MISSING), replacement))
        setattr(owner, name, replacement)

    def replace_if(self, owner: Any, name: str, replacement: Any, expected: Any) -> bool:
        """:meth:`replace` only if ``owner.name`` (own or inherited) is ``expected``;
        False, and nothing changed, where other code patched it first."""
        if getattr(owner, name, _MISSING) is not expected:
            return False
        self.replace(owner, name, replacement)
        return True

    def hook(self, register: Callable[[Callable[..., Any]], Any],
             hook: Callable[..., Any]) -> None:
        """Register a global hook with ``register(hook)`` (one of PyTorch's
        ``register_*_hook`` functions); :meth:`restore` removes it."""
        self._hooks.append((hook, None))
        self._hooks[-1] = (hook, register(hook))

    def after_import(self, name: str, then: Callable[[ModuleType], None]) -> None:
        """Call ``then(module)`` once the program has imported module ``name``: now if it
        is in ``sys.modules``, else right after its import (see :mod:`.imports`), unless
        :meth:`restore` ran first. ``then`` runs inside the program's import: it must not
        raise."""
        module = sys.modules.get(name)
        if module is not None:
            then(module)
            return
        finder = AfterImport(name, then)
        self._finders.append(finder)
        sys.meta_path.insert(0, finder)

    def restore(self, keep: tuple[Callable[..., Any], ...] = ()) -> None:
        """Remove the hooks and put back every attribute still holding our replacement.

        Hooks in ``keep`` stay registered until a later :meth:`restore`: a hook cannot
        be removed while torch iterates over its table (the window stopping from inside
        its own optimizer step hook)."""
        kept = []
        for hook, handle in list(self._hooks):
            if any(hook == k for k in keep):
                kept.append((hook, handle))
            elif handle is not None:
                handle.remove()
            else:  # registered, but interrupted before the handle was kept
                _remove_hook(hook)
        for finder in list(self._finders):
            finder.cancel()
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
        for owner, name, original, replacement in reversed(self._attrs):
            _put_back(owner, name, original, replacement)
        self._hooks, self._attrs, self._finders = kept, [], []


def _remove_hook(hook: Callable[..., Any]) -> None:
    for table in _hook_dicts():
        for key, value in list(table.items()):
            if value is hook or value == hook:  # a bound method is a new object each time
                table.pop(key, None)


def _put_back(owner: Any, name: str, original: Any, replacement: Any) -> None:
    current = vars(owner).get(name, _MISSING)
    if current is replacement:
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)
    elif current is not original:
        where = (f"{owner.__module__}.{owner.__qualname__}" if isinstance(owner, type)
                 else owner.__name__)
        label = "nn.Module.__call__" if owner is nn.Module else f"{where}.{name}"
        warnings.warn(f"{label} was replaced by other code while rngtrace recorded; "
                      "rngtrace's wrapper stays in that chain as a pass-through",
                      RuntimeWarning, stacklevel=4)
