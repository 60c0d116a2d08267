"""``stable_init()``: build a model whose initial values are keyed by parameter name.

With PyTorch's single global stream, a module added, removed or reordered moves the
initial values of everything built after it. :func:`stable_init` builds the model so
that every draw comes from a stream derived from ``(seed, state_dict key, ordinal of the
draw into that key)``; the draws keep their ops and arguments, so the distributions are
those of the model's own init code.

How: a child gets its name from its parent only after its own ``__init__`` has drawn,
so the factory is called twice. The first build learns the keys: it numbers modules in
the order they are seen and names each draw's destination without looking at values
(see :mod:`.keys`); nobody keeps its values, so draws into registered tensors are
skipped and other ``uniform_``/``normal_``/``rand``/``randn`` calls are filled with a
constant (with a fallback to real draws when that upsets the factory). The
second build runs the same code under a dispatch mode that passes each random op a
generator seeded from the key (ops without a ``generator`` argument get their
``.generator`` overload, or run with the device's default generator temporarily set
to the keyed state). Both builds are checked to have the same structure.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import StableInitError
from ..recording.basics import frames
from ..recording.basics.generators import default_generator
from ..recording.basics.patches import Patches
from ..recording.compiled.loaded import dispatch_without_dynamo
from ..recording.oplevel import ops
from ..recording.oplevel.ops import call_device, result_tensor
from . import keys, streams

M = TypeVar("M", bound=nn.Module)

# The first build gives up filling and draws for real when one destination receives
# more than _FILL_ROUNDS times its size in elements (a rejection loop that never
# accepts a filled value; filling row by row is one round), or after _FILL_DRAWS draws.
_FILL_ROUNDS = 64
_FILL_DRAWS = 1_000_000


class _Restart(BaseException):
    """The cheap first build looks stuck: draw for real instead. A BaseException, so
    that ``except Exception`` in the user's code does not swallow it."""


class _Mode(TorchDispatchMode):
    """Forwards every op; random ones go to the build."""

    def __init__(self, build: _Build) -> None:
        super().__init__()
        self.build = build
        self.book = build.book

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        info = ops.lookup(func)
        if info is not None:
            return self.build.on_random(func, info, args, kwargs or {})
        out = func(*args, **kwargs) if kwargs else func(*args)
        if self.book.fresh:
            self.book.propagate(args, out)
        return out


class _Build:
    """One call of the factory. ``kind``: "fill" (first build, cheap stand-ins for the
    big draws), "real" (first build, draws as written; the fallback) or "keyed"."""

    def __init__(self, kind: str, seed: int = 0, plan: keys.Plan | None = None) -> None:
        self.kind = kind
        self.seed = seed
        self.plan = plan
        self.book = keys.Book(expect=plan)
        self.counts: dict[str, int] = {}  # draws so far per key
        self.explicit: dict[int, tuple[torch.Generator, torch.Tensor]] = {}
        self.filled: dict[keys.Ident, list[int]] = {}  # [elements drawn, size]
        self.draws = 0  # draws filled or skipped: values the model's code did not write

    def run(self, factory: Callable[[], Any]) -> Any:
        self.book.stop = sys._getframe(0)
        patches = Patches()
        try:
            # no import of torch's compiler stack for a factory that compiles nothing
            dispatch_without_dynamo(patches, _Mode)
            self.book.install()
            with _Mode(self):
                model = factory()
        finally:
            patches.restore()
            self.book.uninstall()
            for gen, state in self.explicit.values():  # first builds leave them as found
                gen.set_state(state)
        if not isinstance(model, nn.Module):
            raise StableInitError(
                f"the factory must return an nn.Module, it returned {type(model).__name__}")
        _refuse_lazy(model)
        return model


    def on_random(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict) -> Any:
        module = frames.describe_stack(0).module
        mo = self.book.sight(module) if module is not None else -1
        gen = ops.generator_arg(info, args, kwargs)
        if gen is not None and not _is_default(gen):
            return self._explicit(func, args, kwargs, gen)
        device = call_device(info, args, kwargs)
        if device.type == "meta":  # draws nothing
            return func(*args, **kwargs)
        dest = result_tensor(info, args, kwargs, None)
        ident = self.book.lookup(dest) if dest is not None else None
        registered = isinstance(ident, keys.Reg)
        if ident is None:
            ident = self.book.from_frames(sys._getframe(1))
        new = ident is None
        if ident is None:
            ident = self.book.new_fresh(mo)
        if self.kind == "keyed":
            assert self.plan is not None
            key = self.plan.key(ident)
            n = self.counts.get(key, 0)
            self.counts[key] = n + 1
            g = streams.keyed_generator(self.seed, key, n, device)
            out = _call_with(func, info, args, kwargs, g, device)
        elif self.kind == "fill" and func in streams.FILLS:
            # A registered tensor keeps whatever it holds: its first-build values are
            # thrown away, and not writing them spares touching every page of the
            # model. Other tensors (temporaries, resamples) get a value inside the
            # support, so that value-dependent loops end.
            out = dest if registered and info.inplace else streams.FILLS[func](args, kwargs)
            self._guard(ident, result_tensor(info, args, kwargs, out))
        else:  # drawn for real on the default generator, restored after the build
            out = func(*args, **kwargs)
        if new:
            assert isinstance(ident, keys.Fresh)
            self.book.bind(result_tensor(info, args, kwargs, out), ident)
        return out

    def _explicit(self, func: Any, args: tuple, kwargs: dict, gen: torch.Generator) -> Any:
        """A generator the model's code passed: its owner controls it. The second build
        draws from it as written; the first leaves it as it found it."""
        if self.kind == "keyed":
            return func(*args, **kwargs)
        handle = gen._cdata if hasattr(gen, "_cdata") else id(gen)
        if handle not in self.explicit:
            self.explicit[handle] = (gen, gen.get_state())
        if self.kind == "fill" and func in streams.FILLS:
            self.draws += 1
            return streams.FILLS[func](args, kwargs)
        return func(*args, **kwargs)

    def _guard(self, ident: keys.Ident, t: Any) -> None:
        self.draws += 1
        if not isinstance(t, torch.Tensor):
            return
        seen = self.filled.setdefault(ident, [0, 0])
        seen[0] += t.numel()
        seen[1] = max(seen[1], t.untyped_storage().nbytes() // max(t.element_size(), 1))
        if seen[0] > _FILL_ROUNDS * seen[1] + 4096 or self.draws > _FILL_DRAWS:
            raise _Restart


def _refuse_lazy(model: nn.Module) -> None:
    """Lazy modules have no parameters (so no keys) until their first forward."""
    from torch.nn.parameter import is_lazy

    for name, m in model.named_modules():
        tensors = [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        if any(is_lazy(t) for t in tensors):
            raise StableInitError(
                f"module {name!r} ({type(m).__name__}) is lazy: its parameters only exist "
                "after its first forward, so they have no keys at build time; give it its "
                "input size (e.g. nn.Linear instead of nn.LazyLinear) or run a dummy "
                "forward inside the factory")


def _is_default(gen: torch.Generator) -> bool:
    """A default generator passed explicitly is treated like no generator at all."""
    default = default_generator(gen.device)
    return default is not None and getattr(default, "_cdata", 0) == getattr(gen, "_cdata", 1)


def _call_with(func: Any, info: ops.OpInfo, args: tuple, kwargs: dict,
               g: torch.Generator, device: torch.device) -> Any:
    """Run ``func`` drawing from ``g``, whatever its signature."""
    pos = info.generator_pos
    if pos is not None:
        if pos < len(args):
            args = (*args[:pos], g, *args[pos + 1:])
        else:
            kwargs = {**kwargs, func._schema.arguments[pos].name: g}
        return func(*args, **kwargs)
    sibling = streams.with_generator(func)
    if sibling is not None:
        return sibling(*args, **kwargs, generator=g)
    # No generator argument anywhere (dropout, RNN, attention kernels): lend the keyed
    # state to the device's default generator for this one call.
    default = default_generator(device)
    if default is None:
        return func(*args, **kwargs)
    saved = default.get_state()
    default.set_state(g.get_state())
    try:
        return func(*args, **kwargs)
    finally:
        default.set_state(saved)


def _defaults() -> list[tuple[Any, torch.Tensor]]:
    gens = [torch.default_generator]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gens.extend(torch.cuda.default_generators)
    return [(g, g.get_state()) for g in gens]


def _restore(saved: list[tuple[Any, torch.Tensor]]) -> None:
    for g, state in saved:
        g.set_state(state)


# Errors that a filled or skipped value can cause in the model's own code (a Cholesky
# of zeros raises torch.linalg.LinAlgError, a RuntimeError); other errors (a bad
# option, a missing key) are the factory's own and propagate from the first build.
_VALUE_ERRORS = (RuntimeError, ArithmeticError, AssertionError)


def _first_build(factory: Callable[[], Any]) -> tuple[keys.Plan, Any]:
    """Build once to learn the keys: cheaply if possible, for real otherwise. Returns
    the plan and a weak reference to the model built.

    The factory is called a second time (drawing for real) only when the cheap build
    looked stuck, or raised an error that its stand-in values may have caused: one of
    :data:`_VALUE_ERRORS` after at least one value was filled or skipped. Any other
    error propagates from the first call."""
    saved = _defaults()
    for kind in ("fill", "real"):
        build = _Build(kind)
        try:
            model = build.run(factory)
            return keys.plan(build.book, model), weakref.ref(model)
        except (_Restart, Exception) as e:
            if kind == "real" or not (isinstance(e, _Restart) or (
                    isinstance(e, _VALUE_ERRORS) and build.draws)):
                raise
        finally:
            _restore(saved)
    raise AssertionError("unreachable")


def _compare(plan: keys.Plan, book: keys.Book, model: nn.Module) -> None:
    if len(book.modules) < len(plan.types):
        o = len(book.modules)
        raise StableInitError(
            "the factory did not build the same model twice: the second build made fewer "
            f"modules; the first also made {plan.where(o)}")
    second = keys.summary(model)
    for a, b in zip(plan.state, second, strict=False):
        if a != b:
            raise StableInitError(
                "the factory did not build the same model twice: state_dict entry "
                f"{a[0]!r} {list(a[1])} {a[2]} in the first build, "
                f"{b[0]!r} {list(b[1])} {b[2]} in the second")
    if len(plan.state) != len(second):
        extra = (plan.state + second)[min(len(plan.state), len(second))]
        which = "first" if len(plan.state) > len(second) else "second"
        raise StableInitError(
            "the factory did not build the same model twice: only the "
            f"{which} build has state_dict entry {extra[0]!r}")


def stable_init(factory: Callable[[], M], seed: int) -> M:
    """Build ``factory()`` with initial values keyed by parameter name, not by order.

    Every draw made while the model is built comes from a stream derived from
    ``(seed, key, n)``: ``key`` is the state_dict key of the parameter or buffer the
    draw goes into, ``n`` counts the draws into that key. Draws into temporaries go
    with the tensor they are for (``orthogonal_``'s random matrix, ``trunc_normal_``'s
    resamples go with the weight), or else are keyed by their module's path and order.
    The ops and their arguments are unchanged, so each parameter has the distribution
    its model's code gives it. As a result:

    - adding, removing or reordering modules or parameters leaves every other
      parameter bit-identical; the same seed gives the same model, another seed
      another model;
    - every default generator (CPU, and CUDA when initialised) is left exactly as it
      was, so what the program draws next (dropout masks, shuffling) does not depend on
      how the model was initialised;
    - draws on a generator the model's code passes explicitly are left alone.

    ``factory`` is called twice (the keys are only known once a model is built): it
    must build the same structure both times, or :class:`StableInitError` names the
    first difference. A factory that raises is called once (the error propagates),
    unless the error may come from the first build's stand-in values (see
    :func:`_first_build`). Lazy modules (``nn.LazyLinear``) are refused with a
    :class:`StableInitError` naming them: their parameters have no keys at build time.
    The first model's values are never used. See docs/stable_init.md for the limits
    (e.g. inserting into a ``ModuleList`` renumbers the later entries, and so their
    keys).

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
    """
    if not callable(factory):
        raise StableInitError(f"factory must be a callable, not {type(factory).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StableInitError(f"seed must be an int, not {seed!r}")
    saved = _defaults()
    try:
        return _keyed_build(factory, seed)
    finally:
        _restore(saved)


def _keyed_build(factory: Callable[[], M], seed: int) -> M:
    """The first build (keys), then the keyed one, checked to have built the same."""
    plan, first = _first_build(factory)
    build = _Build("keyed", seed, plan)
    model = build.run(factory)
    if model is first():
        raise StableInitError("the factory returned the same model twice: it must "
                              "build a new one at each call")
    _compare(plan, build.book, model)
    return model
