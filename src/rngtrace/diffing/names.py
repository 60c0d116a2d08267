"""Names across two logs: which modules a log knows, and renames between two logs.

:class:`Known` answers "does this log have this module (or something inside it)?" and
"what is the outermost part of this path it does not have?" in time linear in the
path's length (a sorted list and one bisection, never the set of every ancestor, which
is quadratic in the depth of a path).

:func:`infer_renames` finds the modules that B draws *the same values* into under other
names (a wrapper prefix such as ``base_model.model.``, ``_orig_mod.`` or ``module.``, a
renamed attribute): two draws with the same op, shape, arguments and starting state
drew the same numbers. :meth:`Renames.apply` gives B's log in A's names, so that the
alignment sees the same draws as ``equal``.
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import operator
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..log import Draw, Log
from ..text import plural

Path = tuple[str | None, str]  # (model, module path)
_MODEL = operator.attrgetter("model")
_MODULE = operator.attrgetter("module")
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


def module_names(log: Log) -> set[Path]:
    """The (model, module) pairs the draws of a log name."""
    names = set(zip(map(_MODEL, log.draws), map(_MODULE, log.draws), strict=True))
    names.difference_update([(m, None) for m, _ in names if _ is None])
    return names


class Known:
    """Which module paths a log has (drew in, was called, or holds a graded parameter).

    >>> k = Known([(None, "enc.layer.0.attn"), (None, "head")])
    >>> k.module(None, "enc.layer"), k.module(None, "enc.layer.1")
    (True, False)
    >>> k.outermost_unknown(None, "enc.layer.1.attn.q")
    'enc.layer.1'
    """

    def __init__(self, paths: Iterable[Path], log: Log | None = None) -> None:
        self._log = log
        self._targets: set[Path] | None = None
        paths = set(paths)
        models = set(map(_FIRST, paths))
        by_model: dict[str | None, set[str]] = {}
        if len(models) == 1:  # one model: no Python loop over every path
            by_model[models.pop()] = set(map(_SECOND, paths))
        else:
            for model, path in paths:
                by_model.setdefault(model, set()).add(path)
        self._exact = by_model
        self._sorted: dict[str | None, list[str]] = {}  # sorted when first needed

    @classmethod
    def of(cls, log: Log) -> Known:
        paths = set(module_names(log))
        paths.update(log.called or ())
        paths.update((m, t.rpartition(".")[0]) for m, t in log.with_grad or ())
        return cls(paths, log)

    def target(self, model: str | None, key: str) -> bool:
        """Whether the log drew into (or graded) the parameter or buffer ``key``."""
        if self._targets is None:
            log = self._log
            draws = log.draws if log is not None else []
            self._targets = {(d.model, d.target) for d in draws if d.target is not None}
            self._targets.update(log.with_grad or () if log is not None else ())
        return (model, key) in self._targets

    def _deepest(self, model: str | None, path: str) -> int:
        """How much of ``path`` this log has: ``len(path)`` for all of it, else the
        position of the dot after the longest dotted prefix it has (0: only the root;
        -1: not even the model).

        The sorted neighbours of ``path`` share the longest character prefix with it;
        a path with dotted prefix ``P`` shares at least ``P`` and the dot after it, so
        one bisection and one exact lookup decide (linear in ``len(path)``).
        """
        exact = self._exact.get(model)
        if not exact:
            return -1
        if path in exact or not path:
            return len(path)
        paths = self._sorted.get(model)
        if paths is None:
            paths = self._sorted[model] = sorted(exact)
        i = bisect.bisect_left(paths, path)
        lcp = max((_common(paths[k], path) for k in (i - 1, i) if 0 <= k < len(paths)),
                  default=0)
        if lcp == len(path):
            j = bisect.bisect_left(paths, path + ".")
            if j < len(paths) and paths[j].startswith(path + "."):
                return len(path)
        cut = path.rfind(".", 0, min(lcp, len(path) - 1) + 1)
        while cut > 0:
            # a neighbour shares the dot at ``cut`` (cut < lcp), or has the prefix itself
            if cut < lcp or path[:cut] in exact:
                return cut
            cut = path.rfind(".", 0, cut)
        return 0

    def module(self, model: str | None, path: str) -> bool:
        """Whether the log has ``path`` or a module inside it."""
        return self._deepest(model, path) == len(path)

    def outermost_unknown(self, model: str | None, path: str) -> str | None:
        """The shortest dotted prefix of ``path`` the log does not have; None if it has
        ``path`` itself."""
        n = self._deepest(model, path)
        if n == len(path) and n >= 0:
            return None
        start = n + 1 if n > 0 else 0
        end = path.find(".", start)
        return path if end < 0 else path[:end]


def _common(x: str, y: str) -> int:
    n = min(len(x), len(y))
    i = 0
    step = 64
    while i < n and x[i:i + step] == y[i:i + step]:
        i += step
    while i < n and x[i] == y[i]:
        i += 1
    return min(i, n)


# -- renames ----------------------------------------------------------------------------
@dataclass
class Renames:
    """Module paths of B and the names the same modules have in A.

    ``modules`` maps B's (model, path) to A's; ``models`` maps B's model labels to A's;
    ``edits`` counts each renaming as a person reads it (``("(root)",
    "base_model.model")`` for a wrapper) with the number of modules it concerns.
    """

    modules: dict[Path, Path] = field(default_factory=dict)
    models: dict[str | None, str | None] = field(default_factory=dict)
    edits: Counter[tuple[str, str]] = field(default_factory=Counter)
    _cache: dict[Path, Path] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.modules) or bool(self.models)

    def to_a(self, model: str | None, path: str) -> Path:
        """A's name for a module of B: its own mapping, else that of its nearest mapped
        ancestor with the rest of the path appended, else unchanged."""
        key = (model, path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = (self.models.get(model, model), path)
        cut = len(path)
        while cut >= 0:
            head = path[:cut]
            mapped = self.modules.get((model, head))
            if mapped is not None:
                rest = path[cut + 1:] if cut < len(path) else ""
                out = (mapped[0], f"{mapped[1]}.{rest}" if mapped[1] and rest
                       else mapped[1] or rest)
                break
            if cut == 0:
                break
            cut = path.rfind(".", 0, cut)
            if cut < 0:
                cut = 0
        self._cache[key] = out
        return out

    def apply(self, log: Log) -> Log:
        """The same log in A's names (draws, modules called, graded parameters)."""
        draws = [self._draw(d) for d in log.draws]
        called = None if log.called is None else [self.to_a(m, p) for m, p in log.called]
        graded = None if log.with_grad is None else [self._key(m, t)
                                                     for m, t in log.with_grad]
        return dataclasses.replace(log, draws=draws, called=called, with_grad=graded)

    def _key(self, model: str | None, key: str) -> Path:
        owner, _, name = key.rpartition(".")
        m, path = self.to_a(model, owner)
        return m, f"{path}.{name}" if path else name

    def _draw(self, d: Draw) -> Draw:
        if d.module is None and d.target is None:
            return d
        model, module = self.to_a(d.model, d.module) if d.module is not None else (
            self.models.get(d.model, d.model), None)
        target = self._key(d.model, d.target)[1] if d.target is not None else None
        if (model, module, target) == (d.model, d.module, d.target):
            return d
        return dataclasses.replace(d, model=model, module=module, target=target)

    def describe(self, limit: int = 4) -> str:
        """``"(root) is base_model.model in B (35 modules)"`` and the like, most first."""
        parts = [f"{a} is {b} ({plural(n, 'module')})"
                 for (a, b), n in self.edits.most_common(limit)]
        more = len(self.edits) - limit
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _value(d: Draw) -> tuple:
    return (d.op, d.shape, d.dtype, d.state_before, tuple(d.args.items()))


def infer_renames(a: Log, b: Log) -> Renames:
    """The modules B draws the same values into as A, under other names.

    A pair counts only when neither name is used by the other run for itself (two
    modules that swapped their draws are reordered, not renamed), also once the other
    pairs have renamed B: two dropouts of one shape that happen to start from the same
    state in two shifted streams drew the same values, but are no rename.

    >>> from rngtrace import Draw, Log
    >>> def d(i, model, module):
    ...     return Draw(i, "aten::uniform_", module, "Linear", f"{module}.weight", "init", 0,
    ...                 (2,), "float32", "cpu", 2, {}, "default:cpu", f"s{i}", f"s{i + 1}",
    ...                 True, None, None, None, model)
    >>> a = Log(draws=[d(0, "Net", "fc"), d(1, "Net", "out")])
    >>> b = Log(draws=[d(0, "Wrap", "net.fc"), d(1, "Wrap", "net.out")])
    >>> r = infer_renames(a, b)
    >>> r.describe(), r.to_a("Wrap", "net.out.inner")
    ('(root) is net (2 modules)', ('Net', 'out.inner'))
    """
    # A rename gives each run module names the other lacks: most diffs (an insertion,
    # another seed) are ruled out on plain sets of strings, built in C.
    mods_a, mods_b = set(map(_MODULE, a.draws)), set(map(_MODULE, b.draws))
    if set(map(_MODEL, a.draws)) == set(map(_MODEL, b.draws)) and (
            mods_a <= mods_b or mods_b <= mods_a):
        return Renames()
    names_a = module_names(a)
    names_b = module_names(b)
    if names_b <= names_a or names_a <= names_b:
        return Renames()
    pairs = _value_pairs(a, b, names_a, names_b)
    if not pairs:
        return Renames()
    first = Renames()
    for pb, pa in pairs:
        _learn(first, pb, pa)
    translated: dict[Path, list[Path]] = {}
    for pb in names_b:
        translated.setdefault(first.to_a(*pb), []).append(pb)
    out = Renames()
    models: Counter[tuple[str | None, str | None]] = Counter()
    for pb, pa in pairs:
        if any(other != pb for other in translated.get(pa, ())):
            continue  # B has A's module under its own (renamed) name too
        models[(pb[0], pa[0])] += 1
        _learn(out, pb, pa)
    for (mb, ma), _ in models.most_common():
        out.models.setdefault(mb, ma)
    return out


def _value_pairs(a: Log, b: Log, names_a: set[Path], names_b: set[Path]
                 ) -> list[tuple[Path, Path]]:
    """(B's module, A's module) for draws of B with the same values as one of A under
    another name, once per B module. Only modules named in one run can be renamed, so
    only their draws are looked at (none at all in most diffs)."""
    by_value: dict[tuple, Draw] = {}
    for d in a.draws:
        if d.consumed and d.state_before is not None and d.module is not None and (
                d.model, d.module) not in names_b:
            by_value.setdefault(_value(d), d)
    if not by_value:
        return []
    pairs: dict[Path, Path] = {}
    for d in b.draws:
        if not d.consumed or d.state_before is None or d.module is None or (
                d.model, d.module) in names_a:
            continue
        x = by_value.get(_value(d))
        if x is None or x.module is None or (x.model, x.module) == (d.model, d.module):
            continue
        if x.module != d.module and ((x.model, d.module) in names_a or (
                x.module and (d.model, x.module) in names_b)):
            continue
        pairs.setdefault((d.model, d.module), (x.model, x.module))
    return list(pairs.items())


def _learn(out: Renames, b: Path, a: Path) -> None:
    """Map ``b`` to ``a``, and each pair of ancestors left when equal last parts are
    taken off both (``w.x.fc`` is ``x.fc``: ``w.x`` is ``x``, ``w`` is the root)."""
    out.modules[b] = a
    ca, cb = a[1].split(".") if a[1] else [], b[1].split(".") if b[1] else []
    for edit in _edits(ca, cb):
        out.edits[edit] += 1
    if ca == cb:  # the same path in another model class (a subclass of the model)
        out.edits[(f"model {a[0]}", str(b[0]))] += 1
    while ca and cb and ca[-1] == cb[-1]:
        ca, cb = ca[:-1], cb[:-1]
        out.modules.setdefault((b[0], ".".join(cb)), (a[0], ".".join(ca)))


def _edits(ca: list[str], cb: list[str]) -> list[tuple[str, str]]:
    """The differing stretches of two paths, each with one part of context before it."""
    sm = difflib.SequenceMatcher(a=ca, b=cb, autojunk=False)
    out = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        ctx = [] if i1 == 0 else ["*" if ca[i1 - 1].isdigit() else ca[i1 - 1]]
        out.append((".".join(ctx + ca[i1:i2]) or "(root)", ".".join(ctx + cb[j1:j2]) or "(root)"))
    return out
