"""The light mode's view of modules: which calls it skips and how it names the rest.

:data:`PURE` and :data:`DROPOUT` are the ``torch.nn`` types whose own code never draws
(dropout: only in training mode): :class:`.modulelevel.ModuleRecorder` does not read
the generators around their calls, more than half the calls of a transformer.
:class:`Paths` names a called module by its state_dict path in the outermost module
called (``("TinyViT", "blocks.0.attn")``), as the op recorder does, and lists the
parameters of every model seen.
"""

from __future__ import annotations

import torch
from torch import nn

from ..basics.identity import model_label

# torch.nn modules whose own forward code never draws: leaves, and Sequential whose code
# only calls its children (which are read). Their calls (exact type, no hooks of their
# own, which could draw) are not read: more than half the calls of a transformer.
PURE = frozenset(getattr(nn, name) for name in (
    "Sequential", "Linear", "Bilinear", "Identity", "Embedding", "EmbeddingBag", "Flatten",
    "Unflatten",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm", "BatchNorm1d", "BatchNorm2d",
    "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "ReLU", "ReLU6", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
    "LeakyReLU", "ELU", "SELU", "CELU", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Upsample", "PixelShuffle", "ZeroPad2d",
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
    # containers whose forward only calls their children (dropout and attention layers,
    # which are read) and functions that never draw
    "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer", "Transformer",
) if hasattr(nn, name))

# Dropout draws only in training mode (ATen returns the input when not training).
DROPOUT = frozenset(getattr(nn, name) for name in (
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
) if hasattr(nn, name))


class Paths:
    """state_dict paths of called modules, from the outermost module of each call."""

    def __init__(self) -> None:
        self.roots: list[nn.Module] = []  # in order first called; keeps ids valid
        self._root_ids: set[int] = set()
        self._built: set[int] = set()
        self._where: dict[int, tuple[str, str]] = {}  # id(module) -> (model, path)

    def note_root(self, module: nn.Module) -> None:
        if id(module) not in self._root_ids and id(module) not in self._where:
            self._root_ids.add(id(module))
            self.roots.append(module)

    def changed(self) -> None:
        """A module was registered somewhere: paths may have moved."""
        self._built.clear()
        self._where.clear()

    def _build(self, root: nn.Module) -> None:
        self._built.add(id(root))
        label = model_label(root, self.roots)
        for path, mod in root.named_modules(remove_duplicate=False):
            self._where.setdefault(id(mod), (label, path))

    def resolve(self, module: nn.Module, root: nn.Module | None) -> tuple[str | None, str]:
        hit = self._where.get(id(module))
        if hit is None:
            extra = [root] if root is not None and id(root) not in self._root_ids else []
            for r in self.roots + extra:
                if id(r) not in self._built:
                    self._build(r)
                    hit = self._where.get(id(module))
                    if hit is not None:
                        break
        if hit is None:  # not inside any model called (a module made inside forward)
            return None, f"<{type(module).__name__}>"
        return hit

    def parameter_keys(self) -> dict[int, tuple[str, str, torch.Tensor]]:
        """id(parameter) -> (model, first state_dict key, parameter), over all models."""
        out: dict[int, tuple[str, str, torch.Tensor]] = {}
        for root in self.roots:
            label = model_label(root, self.roots)
            for path, mod in root.named_modules(remove_duplicate=False):
                for name, p in mod._parameters.items():
                    if p is not None and id(p) not in out:
                        out[id(p)] = (label, f"{path}.{name}" if path else name, p)
        return out

    def usage(self, modules: list[nn.Module], graded: dict[int, torch.Tensor]
              ) -> tuple[list[tuple[str | None, str]] | None,
                         list[tuple[str | None, str]] | None]:
        """``Log.called`` and ``Log.with_grad``: the paths of ``modules`` (those called),
        and of the parameters that hold a gradient now or are in ``graded`` (seen with
        one at an optimizer step; those found now are added to it)."""
        for m in _outermost(modules):  # models called only from other threads
            self.note_root(m)
        called: dict[tuple[str | None, str], None] = {}
        for m in modules:
            model, path = self.resolve(m, None)
            if model is not None:
                called[(model, path)] = None
        keys = self.parameter_keys()
        for p in keys.values():
            if p[2].grad is not None:
                graded[id(p[2])] = p[2]
        with_grad: list[tuple[str | None, str]] = [
            (keys[i][0], keys[i][1]) for i in graded if i in keys]
        return (list(called) if called else None), (with_grad or None)

    def clear(self) -> None:
        self.roots.clear()
        self._root_ids.clear()
        self.changed()


def _outermost(modules: list[nn.Module]) -> list[nn.Module]:
    """The modules that are inside none of the others, in the order given."""
    inner: set[int] = set()
    for m in modules:
        if id(m) not in inner:  # else its subtree is already in
            inner.update(id(sub) for sub in m.modules() if sub is not m)
    return [m for m in modules if id(m) not in inner]
