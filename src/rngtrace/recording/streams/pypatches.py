"""The wrappers installed on ``random`` and NumPy while a window records their draws.

Every wrapper calls the original once with the same arguments and returns its result;
recording happens after, in :class:`~.pystreams.PyStreams`. Draws made
by the standard library itself (``tempfile`` and multiprocessing name files with private
``Random`` instances) and inner calls (``shuffle`` calling ``_randbelow``) are passed
through. Each attribute is replaced only where it still holds what rngtrace expects, and
put back only where it still holds rngtrace's wrapper (:class:`~..basics.patches.Patches`).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..basics.places import is_import_machinery, place
from .digests import np_global_digest, py_digest

if TYPE_CHECKING:
    from ..basics.patches import Patches
    from .pystreams import PyStreams

# Drawing methods of random.Random, and seeding ones (reseed events).
_PY_DRAW = ("random", "uniform", "triangular", "randint", "randrange", "choice", "choices",
            "shuffle", "sample", "gauss", "normalvariate", "lognormvariate", "expovariate",
            "vonmisesvariate", "gammavariate", "betavariate", "paretovariate",
            "weibullvariate", "getrandbits", "randbytes", "binomialvariate")
_PY_SEED = ("seed", "setstate")
_NP_SEED = ("seed", "set_state")
_NP_SKIP = {"RandomState", "get_state", "get_bit_generator", "set_bit_generator",
            *_NP_SEED}


def install(me: PyStreams, p: Patches) -> None:
    """Wrap ``random``'s drawing and seeding functions, and NumPy's if it is imported."""
    _install_random(me, p)
    if me.numpy is not None:
        _install_numpy(me, p, me.numpy)


def _install_random(me: PyStreams, p: Patches) -> None:
    cls, inst = random.Random, random._inst
    for name in _PY_DRAW + _PY_SEED:
        orig = getattr(cls, name, None)
        if orig is None:
            continue
        wrap = (_wrap_py if name in _PY_DRAW else _wrap_py_seed)(me, name, orig)
        if not p.replace_if(cls, name, wrap, orig):
            continue
        bound = getattr(random, name, None)
        if bound is not None and getattr(bound, "__self__", None) is inst:
            p.replace_if(random, name, _bind(wrap, inst), bound)


def _install_numpy(me: PyStreams, p: Patches, np: Any) -> None:
    rand = np.random.mtrand._rand
    for name in np.random.mtrand.__all__:
        attr: Any = getattr(np.random, name, None)
        if attr is None:
            continue
        if name == "seed" and attr is getattr(np.random.mtrand, "seed", None):
            pass  # a function of mtrand (seeds the global RandomState), not a method
        elif getattr(attr, "__self__", None) is not rand:
            continue
        if name in _NP_SEED:
            wrap = _wrap_np_seed(me, name, attr)
        elif name not in _NP_SKIP:
            wrap = _wrap_np(me, name, attr)
        else:
            continue
        p.replace_if(np.random, name, wrap, attr)
    maker = np.random.default_rng
    p.replace_if(np.random, "default_rng", _wrap_rng(me, maker), maker)


def _wrap_py(me: PyStreams, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
    system = random.SystemRandom

    def wrapper(rng: Any, *args: Any, **kwargs: Any) -> Any:
        if not me.hears() or isinstance(rng, system) or _not_the_program(1):
            return orig(rng, *args, **kwargs)
        return me.draw(rng, f"random.{name}", py_digest, orig, (rng, *args), args, kwargs)

    return _named(wrapper, name, orig)


def _wrap_np(me: PyStreams, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
    rand = orig.__self__  # type: ignore[attr-defined]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not me.hears() or _not_the_program(1):
            return orig(*args, **kwargs)
        return me.draw(rand, f"numpy.random.{name}", np_global_digest, orig, args, args,
                       kwargs)

    return _named(wrapper, name, orig)


def _named(wrapper: Callable[..., Any], name: str, orig: Callable[..., Any]
           ) -> Callable[..., Any]:
    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = getattr(orig, "__doc__", None)
    return wrapper


def _wrap_py_seed(me: PyStreams, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:

    def wrapper(rng: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(rng, *args, **kwargs)
        # random's own generator is named before its first draw, so that seeding it first
        # is seen; but not torch's compiler saving and restoring it around tracing
        if me.hears() and (me.knows(rng) or (rng is random._inst and not _from_torch(1))):
            me.reseed(rng, f"random.{name}", args)
        return out

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def _wrap_np_seed(me: PyStreams, name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
    rand = me.numpy.random.mtrand._rand

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = orig(*args, **kwargs)
        if me.active():
            me.reseed(rand, f"numpy.random.{name}", args)
        return out

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


def _wrap_rng(me: PyStreams, maker: Callable[..., Any]) -> Callable[..., Any]:

    def default_rng(*args: Any, **kwargs: Any) -> Any:
        gen = maker(*args, **kwargs)
        if me.active() and hasattr(gen, "bit_generator"):
            me.watch_new(gen)
        return gen

    default_rng.__doc__ = maker.__doc__
    return default_rng


def _bind(fn: Callable[..., Any], inst: Any) -> Callable[..., Any]:
    def bound(*args: Any, **kwargs: Any) -> Any:
        return fn(inst, *args, **kwargs)

    bound.__name__ = bound.__qualname__ = fn.__name__
    bound.__doc__ = fn.__doc__
    return bound


def _from_torch(depth: int) -> bool:
    """Whether the code calling a wrapper (``depth`` frames up, past rngtrace's own) is
    torch's (dynamo saves and restores ``random``'s state around each compile)."""
    f: Any = sys._getframe(depth)
    while f is not None and place(f.f_code.co_filename) == "rngtrace":
        f = f.f_back
    return f is not None and place(f.f_code.co_filename) == "torch"


def _not_the_program(depth: int) -> bool:
    """Whether the code calling a wrapper (``depth`` frames up, past rngtrace's own) is
    the standard library (``tempfile`` and multiprocessing name files with a private
    ``Random``) or an installed package's code running while it is imported (sympy's
    ``Dummy`` class body draws from an unseeded ``Random()``): not the program's draws,
    and different in every run."""
    f: Any = sys._getframe(depth)
    while f is not None and place(f.f_code.co_filename) == "rngtrace":
        f = f.f_back
    if f is None:
        return False
    where = place(f.f_code.co_filename)
    if where == "stdlib":
        return True
    if where not in ("torch", "package"):
        return False
    while f is not None:  # a module (or class) body of a package, run by an import
        if is_import_machinery(f.f_code.co_filename):
            return True
        f = f.f_back
    return False
