"""The data model: :class:`Draw`, :class:`Event`, :class:`GeneratorInfo`, :class:`FileInfo`
and :class:`Log`, and the words their fields take (:data:`Phase`, :data:`EventKind`,
:data:`Level`).

A :class:`Log` is what :func:`rngtrace.record` produces and what every analysis reads:
the ordered list of random kernel calls (draws), the state changes the recorder could
not see as draws (events), and the generators involved. Records are frozen; analyses
return new objects instead of changing a log. A log is data: its text is made by
:mod:`rngtrace.summary`, its file by :mod:`rngtrace.logfile`, its graph by
:mod:`rngtrace.graph` (the methods that reach them are explained at :func:`provide`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .errors import RngtraceError
from .text import module_label

__all__ = ["CPU_STATE_DIGEST", "EVENT_KINDS", "LEVELS", "OLD_CPU_STATE_DIGEST", "PHASES",
           "SET_BACK", "UNCHANGED", "Conveniences", "Draw", "Event", "EventKind", "FileInfo",
           "GeneratorInfo", "Level", "Log", "ModuleStats", "Phase", "cpu_state_digest",
           "notebook_html", "provide"]

#: When a draw was made: while a model was built (``"init"``), in a module's forward or
#: backward, or anywhere else (``"other"``: a DataLoader, code between steps).
Phase = Literal["init", "forward", "backward", "other"]
PHASES: tuple[Phase, ...] = get_args(Phase)

#: What an :class:`Event` says happened to a generator (see :attr:`Event.kind`).
EventKind = Literal["reseed", "gap", "error", "compiled", "unread"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

#: How a log was recorded: every random kernel call (``"op"``), or the light mode's
#: record per module call that consumed (``"module"``).
Level = Literal["op", "module"]
LEVELS: tuple[Level, ...] = get_args(Level)


@dataclass(frozen=True, slots=True)
class Draw:
    """One call of a random kernel.

    Attributes:
        index: position in the log, from 0.
        op: the aten schema name, e.g. ``"aten::uniform_"``.
        module: state_dict-style path of the module that drew, relative to its model
            (``"blocks.0.attn.qkv"``; ``""`` for the model itself); None outside modules.
        module_type: the module's class name (``"Linear"``), None outside modules.
        target: state_dict key of the parameter or buffer the draw wrote into or became
            (``"blocks.0.attn.qkv.weight"``), None for temporaries and activations.
        phase: when it was drawn, one of :data:`PHASES`.
        step: optimizer steps completed before the draw.
        shape, dtype, device, numel: the tensor the kernel produced or filled.
        args: scalar arguments by schema name (``{"from": -0.1, "to": 0.1}``);
            read-only: a loaded log shares one dict between draws with equal arguments.
        generator: ``"default:cpu"``, ``"default:cuda:0"`` or ``"generator:N"``.
        state_before, state_after: the generator state around the call: a 16-hex-digit
            digest for CPU generators, ``"SEED:OFFSET"`` (Philox) for CUDA ones, None
            where no state exists (meta tensors).
        consumed: whether the state changed (tagged ops may draw nothing: attention with
            dropout 0, meta tensors).
        site, code: innermost frame outside torch and rngtrace (``"models/vit.py:58"``)
            and its source line.
        api: the public torch function that issued the call, when known.
        model: which model the module belongs to (its class name, ``"Net#2"`` for a
            second instance) when several were seen; None outside modules.
        discarded: the tensor drawn into was replaced later (e.g. a weight before tying).
        worker: the DataLoader worker that drew (its id), None in the window's own
            process (see :mod:`rngtrace.recording.streams.workers`).
        copied: the module drawn into was deep-copied into the model and is not in it
            itself (``nn.TransformerEncoder``'s layer, ``copy.deepcopy`` while building):
            ``module``, ``target`` and ``model`` name the first copy.
        local_shape, local_offset, placement: for a draw into a DTensor (an FSDP2 or
            tensor-parallel parameter), this rank's shard: its shape, its offset in the
            global tensor (``shape`` is the global one) and the placements as torch
            prints them (``"S(0)"``, ``"R"``); None for plain tensors.
        graph: the compiled graph the draw was made in (``"0/0:forward"``: dynamo's
            frame/recompile id and the graph's role), None for eager draws; see
            :mod:`rngtrace.recording.compiled`.
        replay: the draw repeats an earlier one from a saved state (an activation
            checkpoint's recompute in backward): same values, nothing consumed.

    Python and NumPy draws (:mod:`rngtrace.recording.streams.pystreams`) use the same fields:
    ``op`` is the function (``random.gauss``, ``numpy.random.normal``), ``generator``
    ``python:random``, ``python:Random#N``, ``numpy:global`` or ``numpy:Generator#N``,
    ``module`` is ``Class.method`` for a Dataset method that drew.
    """

    index: int
    op: str
    module: str | None
    module_type: str | None
    target: str | None
    phase: Phase
    step: int
    shape: tuple[int, ...]
    dtype: str
    device: str
    numel: int
    args: dict[str, Any]
    generator: str
    state_before: str | None
    state_after: str | None
    consumed: bool
    site: str | None
    code: str | None
    api: str | None
    model: str | None = None
    discarded: bool = False
    worker: int | None = None
    copied: bool = False
    local_shape: tuple[int, ...] | None = None
    local_offset: tuple[int, ...] | None = None
    placement: str | None = None
    graph: str | None = None
    replay: bool = False

    @property
    def where(self) -> str:
        """The module path for display: ``"(root)"`` for ``""``, ``"-"`` outside modules."""
        return module_label(self.module)


@dataclass(frozen=True, slots=True)
class Event:
    """A change of generator state that no recorded draw explains.

    Attributes:
        kind: ``"reseed"`` (``torch.manual_seed``, ``set_rng_state`` and the like were
            called inside the window), ``"gap"`` (the state moved between two draws for
            a reason the recorder cannot see: another thread, an untraced extension, a
            restored state), ``"error"`` (the recorder failed to describe a draw),
            ``"compiled"`` (what the recorder saw of a compiled graph) or, in the light
            mode, ``"unread"`` (the next record of a module may hold draws of calls that
            were not read: see :mod:`rngtrace.recording.modulelevel.recorder`).
        generator: the generator concerned.
        before: index of the first draw that saw the changed state (``len(log.draws)``
            when noticed as the window closed).
        site: the user code that made the call, when known.
        detail: a readable description (the function called, the seed); a reseed
            that left every generator as it was ends with :data:`UNCHANGED`; a
            ``set_rng_state`` of a state read in the same window carries :data:`SET_BACK`.
    """

    kind: EventKind
    generator: str
    before: int
    site: str | None = None
    detail: str = ""

    def line(self) -> str:
        """One readable line: ``event: reseed on default:cpu before draw 3 at ...``."""
        return (f"event: {self.kind} on {self.generator} before draw {self.before}"
                + (f" at {self.site}" if self.site else "")
                + (f": {self.detail}" if self.detail else ""))


@dataclass(frozen=True, slots=True)
class GeneratorInfo:
    """A generator seen in a window: its name, device and initial seed."""

    name: str
    device: str
    initial_seed: int | None
    state: str | None = None  # state when first seen


#: How CPU generator states are digested into ``state_before``/``state_after`` (XXH3,
#: 64 bits), as the header's ``meta["cpu_state_digest"]`` says. A log without that key
#: was digested with blake2b (rngtrace 0.1, :data:`OLD_CPU_STATE_DIGEST`): its CPU states
#: cannot be compared with this version's.
CPU_STATE_DIGEST = "xxh3-64"
OLD_CPU_STATE_DIGEST = "blake2b-64"


def cpu_state_digest(log: Log) -> str | None:
    """How ``log``'s CPU generator states were digested; None for a log that no recorder
    made (built by hand, without ``meta``)."""
    found = log.meta.get("cpu_state_digest")
    if found is None:
        return OLD_CPU_STATE_DIGEST if log.meta.get("tool") == "rngtrace" else None
    return str(found)


UNCHANGED = " (state unchanged)"  # ends the detail of a reseed that changed nothing
# follows the call in the detail of a set_rng_state given a state the program read in the
# same window (fork_rng, isolate_rng, a checkpoint's recompute): set back, not restored
SET_BACK = " (set back to a state read in this window)"


@dataclass(frozen=True, slots=True)
class FileInfo:
    """The file a window streamed its log to (``record(path=...)``, ``rngtrace run``).

    Attributes:
        path: the file written, absolute: a rank of a distributed job, or a window that
            found its file held by another process, writes beside the path it was given.
        written: how many records were written: draws, or module-level records in the
            light mode.
        error: why writing stopped early (a full disk), None when it did not; the log is
            then incomplete.
    """

    path: str
    written: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ModuleStats:
    """Consumption of one module, aggregated over a log (see :meth:`Log.module_stats`)."""

    model: str | None
    module: str | None
    module_type: str | None
    draws: int
    values: int
    phases: dict[str, int]
    generators: dict[str, int]
    first: int  # index of its first draw


@dataclass
class Log:
    """The ordered record of one window; see :func:`rngtrace.record`.

    While the window is open ``draws`` stays empty; it is filled, with final module
    names, when the window closes. ``complete`` is False when the block raised or the
    log was read from a file cut short. A window that streamed to a file keeps its
    draws and events there, not here: ``file`` says where and how many (None for a log
    held in memory or loaded).
    """

    draws: list[Draw] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    generators: dict[str, GeneratorInfo] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    complete: bool = True
    steps: int = 0
    level: Level = "op"
    # What the window saw being used, as (model, path) pairs: modules called in forward
    # and parameters that received a gradient (with the frozen ones, once a backward
    # ran: they take part without a gradient). None when no forward (or no backward)
    # ran in the window, so that "unused" is only claimed where use was observable.
    called: list[tuple[str | None, str]] | None = None
    with_grad: list[tuple[str | None, str]] | None = None
    file: FileInfo | None = None

    def __len__(self) -> int:
        return len(self.draws)

    def __iter__(self) -> Iterator[Draw]:
        return iter(self.draws)

    @property
    def values(self) -> int:
        """Total number of values drawn (draws that consumed nothing count 0)."""
        return sum(d.numel for d in self.draws if d.consumed)

    def module_stats(self) -> list[ModuleStats]:
        """Per-module totals, in the order modules first drew."""
        rows: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        for d in self.draws:
            key = (d.model, d.module)
            row = rows.get(key)
            if row is None:
                row = rows[key] = {
                    "module_type": d.module_type, "draws": 0, "values": 0,
                    "phases": {}, "generators": {}, "first": d.index,
                }
            row["draws"] += 1
            if d.consumed:
                row["values"] += d.numel
            row["phases"][d.phase] = row["phases"].get(d.phase, 0) + 1
            row["generators"][d.generator] = row["generators"].get(d.generator, 0) + 1
        return [ModuleStats(model=k[0], module=k[1], **v) for k, v in rows.items()]

    def summary(self) -> str:
        """A per-module table: draws, values drawn, phases and generators, then events;
        what ``print(log)`` prints. The same as :func:`rngtrace.summary.summary`."""
        return _upstairs().summary(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write this log to ``path`` as JSON Lines: the same as ``rngtrace.save(log,
        path)``, the spelling to prefer; read it back with ``rngtrace.load``."""
        _upstairs().save(self, path)

    def to_networkx(self, draws: bool = False) -> Any:
        """The log as a ``networkx.DiGraph`` of modules: the same as
        ``rngtrace.to_networkx(log)``, the spelling to prefer."""
        return _upstairs().to_networkx(self, draws)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:  # what a Jupyter notebook shows
        return notebook_html(self)

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return f"<rngtrace.Log {len(self.draws)} draws, {len(self.events)} events, {state}>"


@dataclass(frozen=True, slots=True)
class Conveniences:
    """What :class:`Log`'s convenience methods call in the layers above this module."""

    summary: Callable[[Log], str]  # rngtrace.summary.summary
    save: Callable[[Log, str | os.PathLike[str]], None]  # rngtrace.logfile.save
    to_networkx: Callable[[Log, bool], Any]  # rngtrace.graph.to_networkx
    html: Callable[[Any], str]  # rngtrace.html.notebook_html


_provided: Conveniences | None = None


def provide(conveniences: Conveniences) -> None:
    """Give :class:`Log` the functions behind ``print(log)``, ``log.summary()``,
    ``log.save(path)``, ``log.to_networkx()`` and a notebook's display
    (:func:`notebook_html`, which the diff, ranks and check records use too).

    A log is data, and this module imports nothing above it: the layers contract in
    ``pyproject.toml`` holds with no exception. The methods, older than that rule and
    used in the README, reach the layers above by dependency inversion:
    ``rngtrace/__init__.py``, which imports every layer and which Python runs before any
    submodule of rngtrace (this one included), calls this once. So every log has them,
    whoever made it (the recorder, the loader, a test by hand).
    """
    global _provided
    _provided = conveniences


def notebook_html(obj: Any) -> str:
    """What a Jupyter notebook shows for a :class:`Log`, a ``Diff``, a ``RankReport`` or a
    ``CheckReport`` (their ``_repr_html_``): :func:`rngtrace.html.notebook_html`, which
    lives in a layer above them all, reached as :func:`provide` explains."""
    return _upstairs().html(obj)


def _upstairs() -> Conveniences:
    if _provided is None:  # only while rngtrace/__init__.py is still running (or failed)
        raise RngtraceError("rngtrace is not fully imported yet: use rngtrace.save, "
                            "rngtrace.to_networkx and rngtrace.summary.summary")
    return _provided
