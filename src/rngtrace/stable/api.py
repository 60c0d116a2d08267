"""``stable_init``: initial values keyed by parameter name, from a factory (the model is
built, :mod:`.build`) or for a model already built (re-initialised in place,
:mod:`.inplace`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from torch import nn

from ..errors import StableInitError
from . import build, inplace

M = TypeVar("M", bound=nn.Module)


def stable_init(factory: Callable[[], M] | M, seed: int, *,
                init: Callable[[M], Any] | None = None) -> M:
    """Initialise a model so that each parameter's values depend only on ``seed`` and
    its own name (its state_dict key), not on construction order or parallelism.

    Draw ``n`` into key ``k`` comes from a stream derived from ``(seed, k, n)``, with the
    model's own ops and arguments. Adding, removing or reordering modules leaves every
    other parameter bit-identical; default generators are left as they were, and
    generators the model's code passes are its own.

    - ``stable_init(factory, seed)``: ``factory()`` builds the model (called twice: the
      first build learns the keys; :class:`StableInitError` names the first difference
      if the two builds differ).
    - ``stable_init(model, seed, init=None)``: re-initialise a built model in place, by
      calling every module's ``reset_parameters()`` (children first), or ``init(model)``.
      A module holding parameters without ``reset_parameters`` is refused by name. For
      a model built on the meta device, sharded (FSDP2 ``fully_shard``, DTensor) and
      given memory with ``to_empty``: every rank draws what its shards hold, and the
      full values are those of one process.

    See docs/stable_init.md for the contract (big draws are made in blocks, so that a
    rank draws only what it holds), the guarantees and the limits.

    Example::

        >>> import torch, rngtrace
        >>> def small(extra):
        ...     def build():
        ...         m = torch.nn.Sequential()
        ...         if extra:
        ...             m.add_module("pre", torch.nn.Linear(4, 4))
        ...         m.add_module("out", torch.nn.Linear(4, 2))
        ...         return m
        ...     return build
        >>> a = rngtrace.stable_init(small(False), seed=0)
        >>> b = rngtrace.stable_init(small(True), seed=0)
        >>> torch.equal(a.out.weight, b.out.weight)
        True
        >>> c = rngtrace.stable_init(small(False)(), seed=0)  # in place: same values
        >>> torch.equal(a.out.weight, c.out.weight)
        True
    """
    _check(factory, seed, init)
    saved = build.defaults()
    try:
        if not isinstance(factory, nn.Module):
            return build.keyed_build(factory, seed)
        build.refuse_lazy(factory)
        inplace.reinit(factory, seed, init)
        return cast("M", factory)  # the model passed in (mypy does not narrow M | Callable)
    finally:
        build.restore(saved)


def _check(factory: Any, seed: Any, init: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StableInitError(f"seed must be an int, not {seed!r}")
    if init is not None and not callable(init):
        raise StableInitError(f"init must be a callable, not {type(init).__name__}")
    if not isinstance(factory, nn.Module):
        if not callable(factory):
            raise StableInitError(f"factory must be a callable or an nn.Module, not "
                                  f"{type(factory).__name__}")
        if init is not None:
            raise StableInitError("init= is for a model passed in (re-initialised in "
                                  "place); a factory's model is initialised by its own code")
