"""Shared fixtures: the story's models (from examples/), seeding, CUDA skipping."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import nn

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_seed():
    """Every test starts from the same global generator state and leaves no mode and no
    patched ``nn.Module.__call__`` behind."""
    torch.manual_seed(0)
    call = nn.Module.__call__
    yield
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    assert _get_current_dispatch_mode() is None, "a dispatch mode was left on the stack"
    assert nn.Module.__call__ is call, "nn.Module.__call__ was left replaced"
