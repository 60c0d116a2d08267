"""Running a function right after the program imports a module, without importing it.

A window must not import torch's compiler stack (``torch._dynamo`` and Inductor take
about a second) for a program that compiles nothing, yet what it installs for compiled
code must be in place before the program's first compiled graph. :class:`AfterImport`
is a finder on ``sys.meta_path`` that watches one module name: when the program imports
that module, it lets the usual finders find it, and runs a function on the module right
after its code has run, inside that import, before anything can use the module.
:meth:`~.patches.Patches.after_import` installs one for a window and removes it with the
window's other patches.

>>> import sys
>>> seen = []
>>> finder = AfterImport("colorsys", seen.append)
>>> _ = sys.modules.pop("colorsys", None)
>>> sys.meta_path.insert(0, finder)
>>> import colorsys
>>> sys.meta_path.remove(finder)
>>> seen == [colorsys]
True
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


class AfterImport:
    """A finder on ``sys.meta_path`` that calls ``then(module)`` once module ``name``
    has been imported (its code run), inside the import, for as long as it is not
    :meth:`cancel`-led. It finds nothing itself: the spec is the other finders'."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self._then: Callable[[ModuleType], None] | None = then
        self._busy = False  # asking the other finders (which may ask this one again)

    def cancel(self) -> None:
        """Run nothing any more, even for an import already under way."""
        self._then = None

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != self.name or self._busy or self._then is None:
            return None
        self._busy = True
        try:
            spec = _others_spec(self, fullname, path, target)
        finally:
            self._busy = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Then(spec.loader, self)
        return spec

    def ran(self, module: ModuleType) -> None:
        """The module's code has run: call ``then`` (unless cancelled)."""
        then = self._then
        if then is not None:
            then(module)


def _others_spec(me: AfterImport, fullname: str, path: Sequence[str] | None,
                 target: ModuleType | None) -> ModuleSpec | None:
    """The spec the rest of ``sys.meta_path`` finds for ``fullname``."""
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is me or find is None:
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _Then(importlib.abc.Loader):
    """The loader of a watched module: the real loader, then :meth:`AfterImport.ran`.
    The module keeps the real loader (``__loader__``, ``__spec__.loader``)."""

    def __init__(self, loader: Any, finder: AfterImport) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._finder.ran(module)

    def __getattr__(self, name: str) -> Any:  # is_package, get_source ...
        return getattr(self._loader, name)
