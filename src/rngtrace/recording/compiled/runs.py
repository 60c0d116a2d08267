"""What the op level writes for a draw made while compiled code runs.

The dispatch mode sees the calls compiled code makes into aten (see :mod:`.seedmaps`):
Inductor's one seed draw per graph call, the random ops of graphs other backends run,
and a checkpoint's recompute in backward. :class:`CompiledRuns` turns each into what
the log holds: the graph's draws in place of Inductor's seed draw, an fx graph's op named
from its node, a draw of a graph without a seed map marked ``graph="inductor:?"``, a
recompute marked as a replay. What cannot be seen is said once, as a ``"compiled"``
event (and a warning where draws are missed). See docs/compile.md.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import torch

from ...log import Draw, Event
from .draws import (
    NO_SEED_MAP,
    OTHER_BACKEND,
    UNKNOWN_GRAPH,
    Inside,
    NameRoot,
    fx_draw,
    graph_draws,
    graph_on_stack,
    inside_compiled_graph,
    replaying,
)
from .loaded import maybe_compiled
from .seedmaps import CompileWatch, GraphCall

# the default generator of a device: its name and its state's text now
ReadDefault = Callable[[torch.device], "tuple[str, str | None]"]


class CompiledRuns:
    """The op level's view of compiled code running, for one window."""

    def __init__(self, watch: CompileWatch, name_root: NameRoot,
                 event: Callable[[Event], None]) -> None:
        self._watch = watch
        self._name_root = name_root
        self._event = event
        self._said: set[str] = set()  # what could not be seen, said once
        self._fx_roots: dict[str, Any] = {}  # modules of the last fx graph's frame

    def at_once(self, phase: str, replay: bool) -> bool | None:
        """Whether the draw being made is written at once, because what it is depends on
        this moment: True when compiled code makes it (Inductor's graph call noted, or a
        compiled graph's frame on the stack, walked only once dynamo compiled), False
        for a replay outside compiled code (see :meth:`replayed`); None for a draw noted
        as any other (one call on every draw: the test is inlined here)."""
        if self._watch.current is not None or (maybe_compiled() and graph_on_stack()):
            return True
        return False if replay or (phase == "backward" and replaying()) else None

    @staticmethod
    def replayed(phase: str, replay: bool) -> bool:
        """Whether a draw is a replay: a checkpoint's higher-order op says so
        (``replay``), or a checkpoint recomputes its forward in backward."""
        return replay or (phase == "backward" and replaying())

    def seen(self, draw: Draw, op: str, replay: bool) -> Draw | list[Draw]:
        """``draw`` as compiled code made it: a list, the draws of the graph whose seed
        draw it is (written as they are); else the draw itself, named for compiled code
        and marked a replay where it is one."""
        call = self._watch.current
        if call is not None and call.seed_map is not None and not call.seeded and (
                op == "aten::randint") and call.seed_map.count:
            call.seeded = True
            return graph_draws(draw, call, self._name_root, draw.index, replay=False)
        return self.marked(self._named(draw, call, replay), replay)

    def marked(self, draw: Draw, replay: bool) -> Draw:
        """``draw`` marked as a replay where it is one (see :meth:`replayed`)."""
        if not draw.replay and self.replayed(draw.phase, replay):
            return dataclasses.replace(draw, replay=True)
        return draw

    def _named(self, draw: Draw, call: GraphCall | None, replay: bool) -> Draw:
        inside = Inside("inductor") if call is not None else inside_compiled_graph()
        if inside is None:
            return draw
        if inside.kind == "fx":
            self._say("fx", draw.index, OTHER_BACKEND, warn=False)
            if draw.phase == "backward":  # no compiled frame on the stack: the forward's
                inside.roots = self._fx_roots
            self._fx_roots = inside.roots
            return fx_draw(draw, inside, self._name_root, replay)
        if call is None or call.seed_map is None:
            self._say("no-seed-map", draw.index, NO_SEED_MAP)
            return dataclasses.replace(draw, graph=UNKNOWN_GRAPH)
        return dataclasses.replace(draw, graph=call.seed_map.label)

    def replays(self, call: GraphCall, index: int, step: int,
                read_default: ReadDefault) -> list[Draw]:
        """The draws a compiled backward graph recomputes from saved seeds (a
        checkpointed region), numbered from ``index``: replays, consuming nothing."""
        device = torch.device("cpu")
        for t in call.inputs:
            if isinstance(t, torch.Tensor):
                device = t.device
                break
        generator, text = read_default(device)
        seed = Draw(index=index, op="", module=None, module_type=None,
                    target=None, phase="backward", step=step, shape=(),
                    dtype="float32", device=str(device), numel=0, args={},
                    generator=generator, state_before=text, state_after=text,
                    consumed=False, site=None, code=None, api=None)
        return graph_draws(seed, call, self._name_root, index, replay=True)

    def _say(self, key: str, index: int, text: str, warn: bool = True) -> None:
        """What the recorder cannot see, said once: a ``compiled`` event, and a warning
        where draws are missed."""
        if key in self._said:
            return
        self._said.add(key)
        self._event(Event("compiled", "", index, None, text))
        if warn:
            warnings.warn(f"rngtrace: {text}", RuntimeWarning, stacklevel=5)
