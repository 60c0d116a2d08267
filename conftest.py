"""The doctests of src/ are collected by importing each module: the integrations with
training frameworks import their framework, which rngtrace does not depend on. Those
whose framework is not installed are left out."""

from __future__ import annotations

import importlib.util

_NEEDS = {"transformers": ("transformers",), "accelerate": ("accelerate",),
          "lightning": ("pytorch_lightning", "lightning")}

collect_ignore = [f"src/rngtrace/integrations/{module}.py" for module, packages in _NEEDS.items()
                  if not any(importlib.util.find_spec(p) for p in packages)]
