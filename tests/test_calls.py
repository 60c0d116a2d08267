"""The recorders' ``nn.Module.__call__`` wrapper (``rngtrace.recording.window.calls``): in
place only during the window, no global module hooks (no slow path), transparent,
compile-safe."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import rngtrace

LEVELS = ["op", "module"]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.lin(x)) + torch.rand_like(x)


def _global_hooks() -> int:
    m = nn.modules.module
    return sum(len(d) for d in (m._global_forward_hooks, m._global_forward_pre_hooks,
                                m._global_backward_hooks, m._global_backward_pre_hooks))


@pytest.mark.parametrize("level", LEVELS)
def test_wrapper_only_inside_the_window_and_no_global_module_hooks(level):
    call, hooks = nn.Module.__call__, _global_hooks()
    net = Net()
    with rngtrace.record(level=level) as log:
        assert nn.Module.__call__ is not call
        assert _global_hooks() == hooks  # module calls keep PyTorch's fast path
        net(torch.ones(2, 4))
    assert nn.Module.__call__ is call and log.called is not None
    assert [path for _, path in log.called] == ["", "lin", "drop"]
    with pytest.raises(ValueError), rngtrace.record(level=level):
        raise ValueError("restored on an exception too")
    assert nn.Module.__call__ is call


@pytest.mark.parametrize("level", LEVELS)
def test_a_patch_laid_over_ours_is_kept_and_ours_turns_pass_through(level):
    call = nn.Module.__call__
    seen = []
    net = Net()
    try:
        with pytest.warns(RuntimeWarning, match="replaced by other code"), \
                rngtrace.record(level=level) as log:
            ours = nn.Module.__call__

            def theirs(module, *args, **kwargs):
                seen.append(type(module).__name__)
                return ours(module, *args, **kwargs)

            nn.Module.__call__ = theirs
            net(torch.ones(2, 4))
        assert nn.Module.__call__ is theirs  # not cut out of the chain
        n = len(log.draws)
        torch.manual_seed(5)
        out = net(torch.ones(2, 4))  # through theirs, then our inert wrapper
        torch.manual_seed(5)
        nn.Module.__call__ = call
        assert torch.equal(out, net(torch.ones(2, 4)))
        assert len(log.draws) == n and seen == ["Net", "Linear", "Dropout"] * 2
    finally:
        nn.Module.__call__ = call


@pytest.mark.parametrize("level", LEVELS)
def test_torch_compile_inside_the_window_is_unchanged(level):
    torch.manual_seed(0)
    net = Net()
    x = torch.ones(2, 4)

    def compiled_run() -> tuple[torch.Tensor, torch.Tensor]:
        torch._dynamo.reset()
        fn = torch.compile(net, backend="eager")  # traced on its first call
        torch.manual_seed(1)
        return fn(x), torch.get_rng_state()

    ref = compiled_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no recorder error, no graph-break warning
        with rngtrace.record(level=level) as log:
            got = compiled_run()
    assert torch.equal(ref[0], got[0]) and torch.equal(ref[1], got[1])
    assert not [e for e in log.events if e.kind == "error"]
    if level == "module":  # the compiled call is charged as a whole
        assert [(d.module, d.module_type) for d in log.draws] == [("", "OptimizedModule")]
