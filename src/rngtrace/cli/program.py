"""PROGRAM on the command lines of ``run``, ``compare`` and ``bisect``, and the
mistakes people make writing it.

``compare`` and ``bisect`` take their own options between the revisions and PROGRAM
(argparse hands everything after the first revision over as one list, which
:func:`read_options` reads up to PROGRAM). ``-m`` works as it does for ``python``:
``-m MODULE`` runs a module; written after ``--`` it still means a module, since
``python -m`` is the only reading a person can mean there. The common slips get a
hint instead of the program's own confusing error: ``python`` written before the
script (:func:`check_program`), and rngtrace's options written after PROGRAM, where
they go to the program (:func:`misplaced`).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from dataclasses import dataclass

from ..errors import UsageError
from ..text import noun

# the options compare and bisect read between REV and PROGRAM: name -> attribute
VALUED = {"--steps": "steps", "-o": "output", "--output": "output", "--level": "level"}
FLAGS = {"--json": "json", "--run-on": "run_on", "-m": "module",
         "--no-ignored": "no_ignored"}
# run's options, for the note on options written after PROGRAM: name -> takes a value
RUN_OPTIONS = {"-o": True, "--output": True, "--steps": True, "--level": True,
               "--run-on": False, "--no-python-rng": False, "-m": False}
SIDE_OPTIONS = {**{k: True for k in VALUED}, **{k: False for k in FLAGS}}

_PYTHON = re.compile(r"python(\d+(\.\d+)*)?(\.exe)?", re.IGNORECASE)


@dataclass(frozen=True)
class Program:
    """What to run: a script path (or, with ``module``, a module name) and its
    arguments."""

    name: str
    args: tuple[str, ...]
    module: bool = False

    def words(self) -> list[str]:
        """As it goes on ``rngtrace run``'s command line, after ``--``."""
        return (["-m"] if self.module else []) + [self.name, *self.args]

    def text(self) -> str:
        """As a person would type it (``train.py --lr 0.1``, ``-m pkg.train``)."""
        return join(self.words())


_PLAIN = re.compile(r"[\w@%+=:,./^-][\w@%+=:,./^~-]*")


def join(words: list[str]) -> str:
    """A command line as a shell reads it, quoting only what needs it (``HEAD~1`` not).

    >>> join(["rngtrace", "compare", "HEAD~1", "HEAD", "--", "my script.py"])
    "rngtrace compare HEAD~1 HEAD -- 'my script.py'"
    """
    return " ".join(w if _PLAIN.fullmatch(w) else shlex.quote(w) for w in words)


def read_options(verb: str, words: list[str], args: argparse.Namespace) -> list[str]:
    """Read rngtrace's options from ``words`` (what follows the revisions) into ``args``,
    up to PROGRAM; PROGRAM and its arguments (empty: none given). ``--`` ends the
    options; ``-m`` right after it still marks a module."""
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if word == "--":
            if words[i + 1:i + 2] == ["-m"]:
                args.module = True
                i += 1
            return words[i + 1:]
        if name in VALUED:
            if not eq:
                if i + 1 == len(words):
                    raise UsageError(f"{verb}: {name} needs a value")
                i += 1
                value = words[i]
            _set_valued(verb, args, VALUED[name], value)
        elif word in FLAGS:
            setattr(args, FLAGS[word], True)
        elif word.startswith("-"):
            raise UsageError(f"{verb}: unknown option {word!r} (the program's own options "
                             f"go after PROGRAM: {verb} [OPTIONS] PROGRAM {name} ...; '--' "
                             "before a program whose name starts with '-')")
        else:
            return words[i:]
        i += 1
    return []


def _set_valued(verb: str, args: argparse.Namespace, attr: str, value: str) -> None:
    if attr == "level":
        if value not in ("op", "module"):
            raise UsageError(f"{verb}: --level is 'op' or 'module', not {value!r}")
        args.level = value
    elif attr == "steps":
        try:
            args.steps = int(value)
        except ValueError:
            raise UsageError(f"{verb}: --steps needs a number, not {value!r}") from None
    else:
        setattr(args, attr, value)


def check_program(verb: str, words: list[str], module: bool,
                  head: list[str] | None = None) -> Program:
    """PROGRAM and its arguments from ``words``; a one-line :class:`UsageError` for no
    program, and for ``python`` written before it (rngtrace runs its own Python), with
    the command to write instead (``head``: what comes before PROGRAM in it)."""
    if not words:
        raise UsageError(f"{verb}: which program? (see '{verb} --help')")
    program = Program(words[0], tuple(words[1:]), module)
    if module or not is_python(program.name):
        return program
    rest = list(program.args)
    head = verb.split() if head is None else head
    if rest[:1] == ["-m"] and len(rest) > 1:
        fixed = [*head, "-m", *rest[1:]]
    elif rest and not rest[0].startswith("-"):
        fixed = [*head, *rest]
    else:
        raise UsageError(f"{verb}: {program.name!r} is not needed: rngtrace runs a script "
                         f"or a module (-m) with its own Python, {sys.executable}")
    raise UsageError(f"{verb}: {program.name!r} is not needed: rngtrace runs PROGRAM with "
                     f"its own Python ({sys.executable}); write: {join(fixed)}")


def is_python(word: str) -> bool:
    """Whether ``word`` names a Python interpreter (``python``, ``/usr/bin/python3.11``)."""
    return bool(_PYTHON.fullmatch(os.path.basename(word)))


def misplaced(verb: str, head: list[str], program: Program, options: dict[str, bool]
              ) -> str | None:
    """A note when some of rngtrace's ``options`` (name -> takes a value) come after
    PROGRAM: they go to the program. It shows the command with them moved before
    PROGRAM, ``head`` being what comes before them (``rngtrace run --steps 3``)."""
    moved: list[str] = []
    kept: list[str] = []
    found: list[str] = []
    args = list(program.args)
    i = 0
    while i < len(args):
        name = args[i].partition("=")[0]
        if name in options and args[i] != "--":
            found.append(name)
            take = 2 if options[name] and "=" not in args[i] and i + 1 < len(args) else 1
            moved += args[i:i + take]
            i += take
            continue
        kept.append(args[i])
        i += 1
    if not found:
        return None
    fixed = join([*head, *moved, *Program(program.name, tuple(kept),
                                               program.module).words()])
    names = ", ".join(dict.fromkeys(found))
    return (f"{verb}: note: {names} after {program.name} {noun(len(found), 'goes', 'go')} "
            f"to {program.name}, not to rngtrace; rngtrace's options go before PROGRAM: "
            f"{fixed}")
