"""The light mode's learned quiet calls: which module calls it stops reading, and how it
notices when one of them draws after all.

A module called inside another is *quiet* once it drew nothing of its own in
:attr:`QuietCalls.learn_after` calls in a row, each next to stretches of its caller's
code that drew nothing either (the stretch before its call and the one after it: a
module whose neighbours draw stays read, or skipping it would mix their draws with its
own). A quiet module's calls are not read, as if it were a ``torch.nn`` container whose
code cannot draw, while ``module.training`` is what it was when learned.

The recorder notes which quiet calls ran in the stretch since its last read
(:attr:`QuietCalls.ran`). If that stretch drew, the draw is charged to the call open (as
for a container) and the recorder writes an ``"unread"`` event with :func:`unread_text`;
the quiet calls that ran are read from then on, and never taken as quiet again. The
records are the same as with every call read (tested on BERT, GPT-2, T5, peft, and
``nn.TransformerEncoder``); only the number of reads changes.

>>> q = QuietCalls(learn_after=2)
>>> m = nn.Module()
>>> q.returned(m, depth=1); q.returned(m, depth=1)
>>> q.modules == {id(m): True}
True
"""

from __future__ import annotations

from torch import nn


class QuietCalls:
    """What the light mode learned about which calls draw, for one window."""

    def __init__(self, learn_after: int) -> None:
        self.learn_after = learn_after  # 0: every call is read
        self.modules: dict[int, bool] = {}  # id -> module.training when learned quiet
        self.calm: dict[int, int] = {}  # id -> calls read in a row that drew nothing
        self.kept: set[int] = set()  # ids that drew, or were next to a stretch that did
        self.ran: list[nn.Module] = []  # quiet calls whose code ran since the last read
        self.open: list[tuple[nn.Module, int]] = []  # quiet calls open, with len(stack)
        self.after: nn.Module | None = None  # the call the current stretch follows

    def drew(self, module: nn.Module) -> None:
        """A read call of ``module`` consumed in its own code: it stays read."""
        if id(module) not in self.kept:
            self.keep(module)

    def returned(self, module: nn.Module, depth: int) -> None:
        """A read call of ``module`` at ``depth`` returned; if it drew, :meth:`drew` was
        told, so a module not kept drew nothing this call."""
        key = id(module)
        self.after = module
        if depth == 0 or key in self.kept:  # the outermost call is always read
            return
        calm = self.calm[key] = self.calm.get(key, 0) + 1
        if calm >= self.learn_after:
            self.modules[key] = module.training

    def drew_next_to(self, module: nn.Module | None) -> None:
        """The stretch of a caller's code that just ended drew: the call it followed and
        ``module``, the call about to start (None: a call returns), stay read."""
        if self.after is not None:
            self.keep(self.after)
        if module is not None:
            self.keep(module)

    def keep(self, module: nn.Module) -> None:
        """``module``'s calls are read from now on, for good."""
        self.kept.add(id(module))
        self.modules.pop(id(module), None)
        self.calm.pop(id(module), None)

    def take_ran(self) -> list[nn.Module]:
        """The quiet calls that ran in a stretch that drew; they are read from now on."""
        ran, self.ran = self.ran, []
        for q in ran:
            self.keep(q)
        return ran

    def stretch_at(self, level: int) -> None:
        """A read call returned to ``level`` open calls: the quiet calls still open there
        run in the stretch that starts."""
        self.ran = [q for q, at in self.open if at == level] if self.open else []

    def reset(self) -> None:
        """Drop the references to modules (the window is paused, resumed or over)."""
        self.ran, self.after = [], None
        self.open.clear()


def unread_text(owner: str, names: list[str], learn_after: int) -> str:
    """The detail of an ``"unread"`` event: whose next record may hold whose draws."""
    listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return (f"the next record of {owner} may hold draws of {listed}, not read then (they "
            f"had drawn nothing in {learn_after} calls); they are read from now on")
