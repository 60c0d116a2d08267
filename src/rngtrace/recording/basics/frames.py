"""Reading the Python stack at a draw: user site, public API, module frames.

The dispatcher tells the recorder *what* was drawn; the Python stack tells *who* asked.
Walking it costs a few microseconds per draw, paid only for random ops, and needs no
hooks on module calls (which would slow down every forward pass): a module's
``__init__``, ``reset_parameters``, ``forward`` or ``_init_weights`` frame carries the
module as ``self``. Facts about each code object are cached.
"""

from __future__ import annotations

import linecache
import sys
from collections.abc import Container
from dataclasses import dataclass
from types import CodeType, FrameType

from torch import nn

from .places import is_site, place, short_path

_MODULE_FILE = nn.modules.module.__file__


@dataclass(frozen=True, slots=True)
class _CodeFacts:
    internal: bool  # in torch, rngtrace, the standard library or an init helper: never a site
    own: bool  # rngtrace's own code: its methods never run on a module
    has_self: bool  # a method: its first argument is called self
    call_impl: bool  # Module._call_impl / _wrapped_call_impl: a forward call
    apply: bool  # Module.apply: fn(child) runs below it
    init_like: bool  # __init__, reset_parameters, _init_weights, post_init ...
    api: str | None  # public dotted name for torch functions, else None
    code: CodeType  # kept alive: its id is the key in _FACTS


# id(code) -> facts. Keyed by id: a code object hashes its name, bytecode, constants and
# names at every lookup (about 1 us for a large forward), an int in C; the facts keep
# the code alive, so that its id is never reused by another code object.
_FACTS: dict[int, _CodeFacts] = {}
# ids of the code objects in _FACTS that are internal: the user-site walk's test (a set
# lookup, where reading the facts would be a dict lookup and an attribute)
_INTERNAL_CODES: set[int] = set()


def _is_public(module: str, qualname: str) -> bool:
    if not module.startswith("torch"):
        return False
    for part in (*module.split("."), *qualname.split(".")):
        if part.startswith("<"):
            continue
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return False
    return True


def _facts(code: CodeType, frame: FrameType) -> _CodeFacts:
    filename = code.co_filename
    # never a site (see .places): torch's own context managers (fork_rng) run through
    # contextlib, and the user's line is further out
    internal = not is_site(filename)
    in_module_py = filename == _MODULE_FILE
    name = code.co_name
    api = None
    if internal and place(filename) == "torch":
        mod = frame.f_globals.get("__name__", "")
        qual = getattr(code, "co_qualname", name)
        if _is_public(mod, qual) and not name.startswith("<"):
            api = f"{mod}.{qual}"
    lowered = name.lower()
    facts = _CodeFacts(
        internal=internal,
        own=place(filename) == "rngtrace",
        # Only ``self``: a function taking the model as first argument (``train(model)``)
        # is not the model drawing. Init functions run by Module.apply are found through
        # the apply frame.
        has_self=code.co_argcount > 0 and code.co_varnames[0] == "self",
        call_impl=in_module_py and name in ("_call_impl", "_wrapped_call_impl"),
        apply=in_module_py and name == "apply",
        init_like=name == "__init__" or "init" in lowered or "reset" in lowered,
        api=api,
        code=code,
    )
    _FACTS[id(code)] = facts
    if internal:
        _INTERNAL_CODES.add(id(code))
    return facts


@dataclass(slots=True)
class StackInfo:
    """What the stack says about one draw."""

    site: str | None = None
    code: str | None = None
    api: str | None = None
    module: nn.Module | None = None  # the module the draw is attributed to by frames
    outermost: nn.Module | None = None  # outermost module on the stack: a root candidate
    phase: str | None = None  # "forward" or "init": whichever frame kind is innermost
    building: tuple[nn.Module, ...] = ()  # modules whose __init__ is running


_SITES: dict[tuple[str, int], tuple[str, str | None]] = {}


def site_of(code: CodeType, lineno: int) -> tuple[str, str | None]:
    key = (code.co_filename, lineno)
    hit = _SITES.get(key)
    if hit is None:
        text = linecache.getline(code.co_filename, lineno).strip() or None
        hit = _SITES[key] = (f"{short_path(code.co_filename)}:{lineno}", text)
    return hit


def user_site(depth: int = 1) -> tuple[str | None, str | None]:
    """Site and source line of the innermost frame outside torch and rngtrace."""
    return user_site_from(sys._getframe(depth))


def user_site_from(f: FrameType | None) -> tuple[str | None, str | None]:
    """:func:`user_site` from frame ``f`` outwards."""
    internal = _INTERNAL_CODES
    while f is not None:
        code = f.f_code
        if id(code) not in internal and (id(code) in _FACTS or not _facts(code, f).internal):
            return site_of(code, f.f_lineno)
        f = f.f_back
    return None, None


def _self_module(f: FrameType) -> nn.Module | None:
    """The module a method runs on (``self``), or the one Module.apply is visiting."""
    obj = f.f_locals.get(f.f_code.co_varnames[0])
    return obj if isinstance(obj, nn.Module) else None


def describe_stack(depth: int = 1, known: Container[int] | None = None) -> StackInfo:
    """Walk the stack from ``depth`` frames above the caller, innermost first.

    Without ``known`` the whole stack is read. With it (the recorder's case) the walk
    stops early once the site, the module and the phase are found and either
    the module is in ``known`` (its names are already resolved: in a training loop, every
    draw after a module's first) or a module's ``__init__`` is running (the names will
    come from the registration hooks at the end): the outer frames would only tell which
    model it belongs to; once only the site is missing, only the site is looked for.
    """
    info = StackInfo()
    building: list[nn.Module] = []
    f: FrameType | None = sys._getframe(depth + 1)
    facts_of = _FACTS.get
    while f is not None:
        facts = facts_of(id(f.f_code)) or _facts(f.f_code, f)
        if info.site is None:
            _note_site(info, f, facts)
        if facts.has_self or facts.apply:  # only these frames can name a module
            _note_module(info, f, facts, known, building)
        if known is not None and info.phase is not None and info.module is not None and (
                building or id(info.module) in known):
            f = f.f_back
            while info.site is None and f is not None:  # settled: only the site is missing
                facts = facts_of(id(f.f_code)) or _facts(f.f_code, f)
                if not facts.internal:
                    info.site, info.code = site_of(f.f_code, f.f_lineno)
                elif info.api is None:
                    info.api = facts.api
                f = f.f_back
            break
        f = f.f_back
    info.building = tuple(building)
    return info


def _note_site(info: StackInfo, f: FrameType, facts: _CodeFacts) -> None:
    """The innermost frame outside torch, rngtrace and the helpers is the site; the
    innermost public torch function inside it, the api."""
    if info.site is not None:
        return
    if facts.internal:
        if info.api is None and facts.api is not None:
            info.api = facts.api
    else:
        info.site, info.code = site_of(f.f_code, f.f_lineno)


def _note_module(info: StackInfo, f: FrameType, facts: _CodeFacts,
                 known: Container[int] | None, building: list[nn.Module]) -> None:
    """What a frame says about the module that drew and the phase."""
    if (facts.call_impl and info.phase is None and info.module is not None
            and known is not None and id(info.module) in known):
        info.phase = "forward"  # the module's names are known: no need to read self
        return
    if not (facts.has_self or facts.apply) or facts.own:
        return
    mod = _self_module(f)
    if mod is None:
        return
    if info.module is None:
        info.module = mod
        back = f.f_back
        # fn(child) called from Module.apply: the draw belongs to the child being
        # visited, not to the model whose method fn happens to be.
        if not facts.apply and back is not None:
            bf = _FACTS.get(id(back.f_code)) or _facts(back.f_code, back)
            if bf.apply:
                parent = _self_module(back)
                if parent is not None:
                    info.module = parent
    info.outermost = mod
    # The innermost of a forward call and an init method decides: lazy modules
    # initialise inside forward, some constructors run a forward.
    if info.phase is None:
        if facts.call_impl:
            info.phase = "forward"
        elif facts.apply or facts.init_like:
            info.phase = "init"
    if f.f_code.co_name == "__init__":
        building.append(mod)
