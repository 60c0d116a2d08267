"""Unused consumers: modules and parameters that drew at init but were never used."""

from __future__ import annotations

from ..log import Draw, Log
from .model import Reason, Unused


def _used_inside(model: str | None, module: str, draws: list[Draw],
                 called: set[tuple[str | None, str]],
                 graded: set[tuple[str | None, str]] | None) -> bool:
    """A module never called as a module but used by its parent: one of its parameters
    got a gradient, or it is ``MultiheadAttention.out_proj``, whose weight
    ``F.multi_head_attention_forward`` uses directly (its class exists for that alone)."""
    if graded is not None and any((model, d.target) in graded for d in draws
                                  if d.target is not None):
        return True
    parent = module.rpartition(".")[0]
    return draws[0].module_type == "NonDynamicallyQuantizableLinear" and (
        model, parent) in called


def unused_consumers(log: Log) -> list[Unused]:
    """Modules and parameters that drew at init but were never used in the window.

    A module that drew while the model was built and never ran forward (nor gave a
    parameter to a gradient: ``MultiheadAttention.out_proj`` is used without a call),
    or a parameter that drew and never received a gradient (frozen ones count as
    used: the recorder lists them with the graded ones), changes nothing in the model's
    output but moves the generator for everything built after it: the usual reason
    why a tidy copy of a project does not reproduce the old numbers. Only claimed where
    use was observable: an empty list when the log saw no forward (``log.called`` is
    None) and no backward (``log.with_grad`` is None).

    >>> from rngtrace import Draw, Log
    >>> def draw(i, module, target):
    ...     return Draw(i, "aten::uniform_", module, "Linear", target, "init", 0, (2,),
    ...                 "float32", "cpu", 2, {}, "default:cpu", None, None, True,
    ...                 "net.py:3", "", None, "Net")
    >>> log = Log(draws=[draw(0, "fc", "fc.weight"), draw(1, "extra", "extra.weight")],
    ...           called=[("Net", ""), ("Net", "fc")], with_grad=[("Net", "fc.weight")])
    >>> [(u.module, u.reason, u.targets) for u in unused_consumers(log)]
    [('extra', 'never called', ('extra.weight',))]
    """
    if log.called is None and log.with_grad is None:
        return []
    called = set(log.called) if log.called is not None else None
    graded = set(log.with_grad) if log.with_grad is not None else None
    by_module: dict[tuple[str | None, str], list[Draw]] = {}
    for d in log.draws:
        if d.phase == "init" and d.module is not None and not d.discarded:
            by_module.setdefault((d.model, d.module), []).append(d)
    out = []
    reason: Reason
    for (model, module), draws in by_module.items():
        if called is not None and (model, module) not in called and not _used_inside(
                model, module, draws, called, graded):
            reason, mine = "never called", draws
        elif graded is not None:
            reason = "no gradient"
            mine = [d for d in draws if d.target is not None
                    and (model, d.target) not in graded]
        else:
            continue
        if not mine:
            continue
        targets = tuple(dict.fromkeys(d.target for d in mine if d.target is not None))
        f = mine[0]
        out.append(Unused(model, module, f.module_type, targets, reason, len(mine),
                          sum(d.numel for d in mine if d.consumed), f.site, f.code,
                          f.index))
    return out
