"""Which aten ops draw random numbers, and how to read their arguments.

An op is random when it carries ``torch.Tag.nondeterministic_seeded`` or takes a
``Generator?`` argument. The rule is applied lazily, op by op, the first time the
recording mode sees an op, and cached: the dispatcher's fast path then costs one
attribute read (the classification is kept on the overload itself, see :data:`TAG`).
:func:`random_ops` applies the same rule to every registered aten overload (for tests
and documentation; it takes a fraction of a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# Ops with a generator argument that seed or query a generator instead of drawing.
_NOT_DRAWS = frozenset({"aten::manual_seed", "aten::seed", "aten::initial_seed"})

# Argument types that are reported in ``Draw.args`` (scalars only: tensors, sizes,
# dtypes and devices are described by the draw's own fields).
_SCALAR_TYPES = ("float", "int", "bool", "Scalar", "SymInt", "float?", "int?", "bool?",
                 "Scalar?", "SymInt?")


@dataclass(frozen=True, slots=True)
class OpInfo:
    """What the recorder needs to know about one random overload."""

    name: str  # schema name, e.g. "aten::uniform_"
    inplace: bool  # the op writes into its first argument
    generator_pos: int | None  # position of the Generator? argument, if any
    scalars: tuple[tuple[int, str], ...]  # (position, name) of scalar arguments
    out_kw: tuple[str, ...]  # names of out= arguments


def _has_generator(schema: torch.FunctionSchema) -> bool:
    return any("Generator" in str(a.type) for a in schema.arguments)


def is_random_overload(op: torch._ops.OpOverload) -> bool:
    """True when ``op`` draws from a generator (by tag or by a ``Generator?`` argument)."""
    schema = op._schema
    if schema.name in _NOT_DRAWS:
        return False
    return torch.Tag.nondeterministic_seeded in op.tags or _has_generator(schema)


def _op_info(op: torch._ops.OpOverload) -> OpInfo:
    schema = op._schema
    gen_pos = None
    scalars = []
    out_kw = []
    for i, a in enumerate(schema.arguments):
        t = str(a.type)
        if "Generator" in t:
            gen_pos = i
        elif t in _SCALAR_TYPES:
            scalars.append((i, a.name))
        if a.is_out:
            out_kw.append(a.name)
    first = schema.arguments[0] if schema.arguments else None
    inplace = bool(
        first is not None
        and first.alias_info is not None
        and first.alias_info.is_write
        and not first.is_out
    )
    return OpInfo(schema.name, inplace, gen_pos, tuple(scalars), tuple(out_kw))


# The attribute that carries an overload's classification once seen (None: not random),
# the cache of classify(). The recording mode's fast path reads it (as
# ``func._rngtrace_info``): about 3 ns in a tight loop, against 31 ns for a dictionary
# keyed by id (hashing an OpOverload itself runs its Python ``__hash__``), on every op the
# program dispatches while recording.
TAG = "_rngtrace_info"


def classify(op: Any) -> OpInfo | None:
    """Return the :class:`OpInfo` of a random op, or None; an overload keeps the answer
    (:data:`TAG`). Anything else (a higher-order op) is None, and is not tagged."""
    if not isinstance(op, torch._ops.OpOverload):
        return None
    info = _op_info(op) if is_random_overload(op) else None
    setattr(op, TAG, info)
    return info


def lookup(op: Any) -> OpInfo | None:
    """The cached classification of ``op`` (classified now if it was never seen).

    >>> lookup(torch.ops.aten.add.Tensor) is None, lookup(torch.ops.aten.bernoulli_.float).name
    (True, 'aten::bernoulli_')
    """
    try:
        return getattr(op, TAG)
    except AttributeError:
        return classify(op)


def random_ops(namespace: str = "aten") -> list[torch._ops.OpOverload]:
    """Every registered overload in ``namespace`` that the recorder treats as random.

    >>> ops = random_ops()
    >>> torch.ops.aten.uniform_.default in ops and torch.ops.aten.randperm.default in ops
    True
    """
    packets = getattr(torch.ops, namespace)
    found = []
    prefix = namespace + "::"
    for schema in torch._C._jit_get_all_schemas():
        if not schema.name.startswith(prefix):
            continue
        packet = getattr(packets, schema.name[len(prefix):], None)
        overload = getattr(packet, schema.overload_name or "default", None) if packet else None
        if isinstance(overload, torch._ops.OpOverload) and is_random_overload(overload):
            found.append(overload)
    return found


def api_name(op_name: str) -> str:
    """The public torch function most likely behind a direct call of ``op_name``.

    Used when no public torch Python frame sits between the user's code and the kernel:
    ``aten::randn`` -> ``torch.randn``, ``aten::normal_`` -> ``torch.Tensor.normal_``.
    """
    base = op_name.split("::", 1)[-1]
    if base.endswith("_") and not base.startswith("_"):
        return f"torch.Tensor.{base}"
    return f"torch.{base}"


def scalar_args(info: OpInfo, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The scalar arguments of one call, by schema name (None values left out)."""
    out: dict[str, Any] = {}
    n = len(args)
    for pos, name in info.scalars:
        value = args[pos] if pos < n else kwargs.get(name)
        if value is None:
            continue
        if isinstance(value, bool | int | float):
            out[name] = value
        else:  # symbolic sizes, complex numbers: kept readable, never evaluated
            out[name] = repr(value)
    return out


def generator_arg(info: OpInfo, args: tuple, kwargs: dict) -> torch.Generator | None:
    """The explicit generator passed to this call, if any."""
    if info.generator_pos is None:
        return None
    pos = info.generator_pos
    g = args[pos] if pos < len(args) else kwargs.get("generator")
    return g if isinstance(g, torch.Generator) else None


def call_device(info: OpInfo, args: tuple, kwargs: dict) -> torch.device:
    """The device whose default generator a call without a generator uses."""
    for a in args:
        if isinstance(a, torch.Tensor):
            return a.device
        if isinstance(a, list | tuple) and a and isinstance(a[0], torch.Tensor):
            return a[0].device
    dev = kwargs.get("device")
    if dev is not None:
        return torch.device(dev)
    return torch.get_default_device()


def result_tensor(info: OpInfo, args: tuple, kwargs: dict, out: Any) -> Any:
    """The tensor a call draws into: its in-place argument, its ``out=``, or what it
    returns (the first tensor of a tuple); None for a call without one."""
    if info.inplace and args and isinstance(args[0], torch.Tensor):
        return args[0]
    for name in info.out_kw:
        t = kwargs.get(name)
        if isinstance(t, torch.Tensor):
            return t
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple):
        for t in out:
            if isinstance(t, torch.Tensor):
                return t
    return None
