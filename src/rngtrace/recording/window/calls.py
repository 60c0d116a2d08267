"""Seeing every module call for a window, without PyTorch's global module hooks.

A global forward hook (``register_module_forward_pre_hook`` and friends) sends every
module call in the process down ``nn.Module._call_impl``'s slow path, whatever the hook
does: about 5 us more per call on the 2-core machine the benchmarks ran on, against 1 us
for the call itself, 2.6% of a small transformer's CPU training step before the hook has
done any work. A window instead replaces ``nn.Module.__call__`` with one thin wrapper,
:meth:`~.window.Window._wrap` (installed by :func:`patch_calls`), in which a level may
have a hook of its own (the light mode's reads); ``_call_impl`` keeps its fast path, and
a wrapper that only notes the module costs about half a microsecond.

Rules the wrapper and a level's hook follow, so that the patch never changes what the
program computes:

- it calls the original ``__call__`` exactly once with the same arguments and returns
  its result (or lets its exception through);
- while dynamo traces (``torch.compiler.is_compiling()``) it is a plain pass-through,
  so compiled graphs are the same as without it;
- after the window it stays a pass-through: if some other code replaced
  ``nn.Module.__call__`` on top of ours, the wrapper is left in that chain rather than
  cutting the other code out, and :meth:`~rngtrace.recording.basics.patches.Patches.restore`
  says so with a warning.

A forked child (a DataLoader worker) inherits the patch; the window it belongs to turns
inert there (see :mod:`rngtrace.recording.window.window`), so the wrapper passes through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch import nn

from ..basics.patches import Patches

_Call = Callable[..., Any]


def patch_calls(patches: Patches, make: Callable[[_Call], _Call]) -> None:
    """Replace ``nn.Module.__call__`` by ``make(original)`` until ``patches.restore()``."""
    original = nn.Module.__call__
    wrapper = functools.update_wrapper(make(original), original)
    patches.replace(nn.Module, "__call__", wrapper)
