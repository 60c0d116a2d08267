"""What of torch's compiler stack the program has loaded, and keeping it unloaded.

Importing ``torch._dynamo`` (with Inductor) takes about a second. A program that
compiles nothing never needs it, and a window must not import it for such a program:
what rngtrace installs for compiled code (Inductor's seed-map pass, see :mod:`.seedmaps`)
waits until the program imports it (:meth:`~..basics.patches.Patches.after_import`), and
the tests below only look at ``sys.modules``.

The one import left was torch's own: every ``TorchDispatchMode`` subclass has its
``__torch_dispatch__`` wrapped (``torch._disable_dynamo``) so that dynamo never traces
it, and that wrapper imports ``torch._dynamo`` at its first call. No compiled code can
run before dynamo is imported, so until then a mode may dispatch through its own
function: :func:`dispatch_without_dynamo` sets that for a window and gives torch's
wrapper back the moment the program imports dynamo, before it can compile anything.
"""

from __future__ import annotations

import sys
from typing import Any

from ..basics.patches import Patches

DYNAMO = "torch._dynamo"


def dispatch_without_dynamo(patches: Patches, mode: type[Any]) -> None:
    """Until the program imports ``torch._dynamo``, let ``mode`` (a ``TorchDispatchMode``
    subclass) dispatch through its own ``__torch_dispatch__`` instead of torch's wrapper
    (which would import it, see the module doc); torch's wrapper comes back as dynamo's
    import finishes, and with ``patches.restore()``."""
    wrapped = vars(mode).get("__torch_dispatch__")
    own = getattr(wrapped, "__wrapped__", None)
    if own is None or DYNAMO in sys.modules:
        return
    patches.replace(mode, "__torch_dispatch__", own)

    def wrap_again(_: Any) -> None:
        if vars(mode).get("__torch_dispatch__") is own:
            mode.__torch_dispatch__ = wrapped

    patches.after_import(DYNAMO, wrap_again)


def compiling() -> bool:
    """True while dynamo, AOTAutograd or Inductor compile (they save and restore the
    generators' states around tracing: no reseed of the user's)."""
    guards = sys.modules.get("torch._guards")
    return guards is not None and guards.CompileContext.current_compile_id() is not None


def maybe_compiled() -> bool:
    """Cheap test before a stack walk: has dynamo compiled anything in this process?"""
    utils = sys.modules.get("torch._dynamo.utils")
    return utils is not None and bool(utils.counters["stats"].get("unique_graphs"))
