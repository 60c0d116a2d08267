"""Whose code a file holds: rngtrace's, torch's, the standard library's, an installed
package's, or the program's. One answer for every part of the recorder that asks.

Four places asked this before, each with its own copy, and their answers had drifted;
this is the one answer, and why it is the right one:

- ``"rngtrace"``: any file of the ``rngtrace`` package, not only ``recording/``. A line
  of ``stable_init`` or of the CLI's runner is no more the user's than the recorder's,
  and none of rngtrace's methods runs on a user's module. (Two copies took only the
  folder of the module that asked; after the move into rooms that would have been one
  room.)
- ``"torch"``: torch's own files. Checked before ``"package"``: torch is installed, but
  its functions are the API a draw goes through (``torch.nn.init.normal_``), never the
  line that asked for it.
- ``"stdlib"``: the standard library: sysconfig's ``stdlib`` and ``platstdlib`` folders
  and the frozen modules (``<frozen importlib._bootstrap>``, ``<frozen os>``), except a
  ``site-packages``/``dist-packages`` folder inside them: some distributions install
  packages under the standard library's folder, and those are packages. (One copy left
  out ``platstdlib``, two did not look for packages inside, one missed frozen modules.)
- ``"package"``: an installed package (a path through ``site-packages`` or
  ``dist-packages``) other than torch and rngtrace.
- ``"program"``: everything else: the user's files, ``<stdin>``, ``<string>``, notebook
  cells, generated code (``<eval_with_key>``).

A folder is recognised under both spellings, as imported and with links resolved. The
answer is kept per file name: the recorder asks at every draw.

What each caller makes of it: a draw's *site* is the innermost frame that is neither
rngtrace, torch, the standard library nor a library's generic init helper
(:func:`is_site`); a ``random`` call made by the standard library, or by a package's code
while it is imported, is not the program's draw (:mod:`..streams.pypatches`).

>>> import rngtrace.stable.build as stable
>>> place(stable.__file__), place(torch.__file__), place(os.__file__), place("<frozen os>")
('rngtrace', 'torch', 'stdlib', 'stdlib')
>>> stdlib = sysconfig.get_paths()["stdlib"]
>>> place(os.path.join(stdlib, "site-packages", "timm", "layers", "mlp.py"))
'package'
>>> place("/home/me/train.py"), place("<stdin>")
('program', 'program')
"""

from __future__ import annotations

import os
import sysconfig
from typing import Literal

import torch

Place = Literal["rngtrace", "torch", "stdlib", "package", "program"]


def _both(folder: str) -> tuple[str, ...]:
    """A folder as imported and with links resolved, each ending with a separator."""
    return tuple({os.path.abspath(folder) + os.sep, os.path.realpath(folder) + os.sep})


_RNGTRACE = _both(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
_TORCH = _both(os.path.dirname(torch.__file__))
_STDLIB = tuple({d for key in ("stdlib", "platstdlib")
                 for d in _both(sysconfig.get_paths()[key])})
_PACKAGES = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
# Generic init helpers of libraries: a draw made in one of them is asked for by the line
# that called it (a model's ``_init_weights``), never by the helper itself.
_HELPERS = tuple(os.sep + os.path.join(*p) for p in (
    ("transformers", "initialization.py"),
    ("timm", "layers", "weight_init.py"),
    ("timm", "models", "layers", "weight_init.py"),
))

_PLACES: dict[str, Place] = {}


def _classify(filename: str) -> Place:
    if filename.startswith(_RNGTRACE):
        return "rngtrace"
    if filename.startswith(_TORCH):
        return "torch"
    installed = any(m in filename for m in _PACKAGES)
    if filename.startswith("<frozen ") or (filename.startswith(_STDLIB) and not installed):
        return "stdlib"
    return "package" if installed else "program"


def place(filename: str) -> Place:
    """Whose code the file ``filename`` (a code object's ``co_filename``) holds."""
    hit = _PLACES.get(filename)
    if hit is None:
        hit = _PLACES[filename] = _classify(filename)
    return hit


def is_site(filename: str) -> bool:
    """Whether a line of ``filename`` can be a draw's site: the program's or a library's
    code, not rngtrace, torch, the standard library or a generic init helper."""
    return place(filename) in ("program", "package") and not filename.endswith(_HELPERS)


def is_import_machinery(filename: str) -> bool:
    """Whether ``filename`` is the import system's (a module body runs below it)."""
    return filename.startswith("<frozen importlib")


def short_path(filename: str) -> str:
    """A file name as a person reads it: relative to site-packages for installed
    libraries, else to the working directory (absolute when outside it)."""
    for marker in _PACKAGES:
        i = filename.rfind(marker)
        if i >= 0:
            return filename[i + len(marker):]
    try:
        rel = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if rel.startswith(".." + os.sep) else rel
