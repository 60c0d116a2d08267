"""Seeing every module call for a window, without PyTorch's global module hooks.

A global forward hook (``register_module_forward_pre_hook`` and friends) sends every
module call in the process down ``nn.Module._call_impl``'s slow path, whatever the hook
does: about 5 us more per call on the 2-core machine the benchmarks ran on, against 1 us
for the call itself, 2.6% of a small transformer's CPU training step before the hook has
done any work. The recorders instead replace ``nn.Module.__call__`` for their window with
a thin wrapper made by the recorder (:class:`CallPatch`); ``_call_impl`` keeps its fast
path, and a wrapper that only notes the module costs about half a microsecond.

Rules every wrapper follows, so that the patch never changes what the program computes:

- it calls the original ``__call__`` exactly once with the same arguments and returns
  its result (or lets its exception through);
- while dynamo traces (``torch.compiler.is_compiling()``) it is a plain pass-through,
  so compiled graphs are the same as without it;
- after the window it stays a pass-through: if some other code replaced
  ``nn.Module.__call__`` on top of ours, the wrapper is left in that chain rather than
  cutting the other code out, and :meth:`CallPatch.uninstall` says so with a warning.

A forked child (a DataLoader worker) inherits the patch: the ``on_fork`` callback given
to :class:`CallPatch` runs there, for the recorder to ignore the child's calls.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

from torch import nn

_Call = Callable[..., Any]

_ON_FORK: dict[int, Callable[[], None]] = {}  # id(patch) -> callback, while installed


def _in_child() -> None:
    for callback in list(_ON_FORK.values()):
        callback()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


class CallPatch:
    """``nn.Module.__call__`` replaced by ``make(original)`` between :meth:`install` and
    :meth:`uninstall`."""

    def __init__(self, make: Callable[[_Call], _Call],
                 on_fork: Callable[[], None] | None = None) -> None:
        self._make = make
        self._on_fork = on_fork
        self._original: _Call | None = None
        self._wrapper: _Call | None = None

    def install(self) -> None:
        original = nn.Module.__call__
        wrapper = self._make(original)
        functools.update_wrapper(wrapper, original)
        self._original, self._wrapper = original, wrapper
        if self._on_fork is not None:
            _ON_FORK[id(self)] = self._on_fork
        nn.Module.__call__ = wrapper  # type: ignore[method-assign]

    def uninstall(self) -> None:
        _ON_FORK.pop(id(self), None)
        if self._wrapper is None:
            return
        if nn.Module.__dict__.get("__call__") is self._wrapper:
            nn.Module.__call__ = self._original  # type: ignore[method-assign,assignment]
        else:
            warnings.warn("nn.Module.__call__ was replaced by other code while rngtrace "
                          "recorded; rngtrace's wrapper stays in that chain as a "
                          "pass-through", RuntimeWarning, stacklevel=3)
        self._original = self._wrapper = None
