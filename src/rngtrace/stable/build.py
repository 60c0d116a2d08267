"""``stable_init(factory, seed)``: build a model whose initial values are keyed by
parameter name.

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
from ..recording.basics.patches import Patches
from ..recording.compiled.loaded import dispatch_without_dynamo
from ..recording.oplevel import ops
from ..recording.oplevel.ops import call_device, result_tensor
from . import draws, keys, streams

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
        self.explicit: dict[int, tuple[torch.Generator, torch.Tensor]] = {}
        self.filled: dict[keys.Ident, list[int]] = {}  # [elements drawn, size]
        self.draws = 0  # draws filled or skipped: values the model's code did not write
        self.keyed = draws.Keyed(seed)

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
        refuse_lazy(model)
        return model


    def on_random(self, func: Any, info: ops.OpInfo, args: tuple, kwargs: dict) -> Any:
        module = frames.describe_stack(0).module
        mo = self.book.sight(module) if module is not None else -1
        gen = ops.generator_arg(info, args, kwargs)
        if gen is not None and not draws.is_default(gen):
            return self._explicit(func, args, kwargs, gen)
        device = call_device(info, args, kwargs)
        if device.type == "meta":  # draws nothing
            return func(*args, **kwargs)
        dest = result_tensor(info, args, kwargs, None)
        ident = self.book.lookup(dest) if dest is not None else None
        registered = isinstance(ident, keys.Reg)
        lent = ident is None
        if ident is None:
            ident = self.book.from_frames(sys._getframe(1))
        new = ident is None
        if ident is None:
            ident = self.book.new_fresh(mo)
        if self.kind == "keyed":
            assert self.plan is not None
            out = self.keyed.draw(func, info, args, kwargs, self.plan.key(ident),
                                  lent and not new, device)
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


def refuse_lazy(model: nn.Module) -> None:
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


def defaults() -> list[tuple[Any, torch.Tensor]]:
    gens = [torch.default_generator]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        gens.extend(torch.cuda.default_generators)
    return [(g, g.get_state()) for g in gens]


def restore(saved: list[tuple[Any, torch.Tensor]]) -> None:
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
    saved = defaults()
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
            restore(saved)
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


def keyed_build(factory: Callable[[], M], seed: int) -> M:
    """The first build (keys), then the keyed one, checked to have built the same."""
    plan, first = _first_build(factory)
    build = _Build("keyed", seed, plan)
    model = build.run(factory)
    if model is first():
        raise StableInitError("the factory returned the same model twice: it must "
                              "build a new one at each call")
    _compare(plan, build.book, model)
    return model
