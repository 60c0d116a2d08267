"""Every code block in README.md and docs/*.md runs, so that the docs stay true.

What happens to a fenced block depends on its language (the word after the opening fence):

- ``python``: run (``exec``) in a fresh namespace, in a temporary directory holding the
  files the docs name (see :func:`workspace`), after :data:`PRELUDE`, which defines the
  placeholders the docs use for the reader's own code (``Net``, ``MyModel``, ``cfg``,
  ``build_model``, ``train``, ``log_a``...). It must not raise.
- ``sh`` (or ``bash``, ``shell``, ``console``): each line is a command (a trailing
  ``# comment`` is dropped). ``rngtrace ...`` runs through ``rngtrace.cli.main`` in the
  same directory (one per document, so a command reads what an earlier one wrote) and
  must exit 0 or 1 (1: "different", for diff and compare), with no traceback. ``make
  TARGET``: the target must exist in the Makefile. ``python FILE``: the file must exist.
  Other programs (``pip``, ``apt-get``, ``source``) are not run.
- no language, or ``text``: output shown to the reader; not run.

A block that must not run (it needs a GPU, the network, minutes) gets a marker on the
line just before its opening fence::

    <!-- docs-test: skip (why) -->

and the reason is required. Keep such blocks few.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shlex
import shutil
import subprocess
import traceback
from dataclasses import dataclass

import pytest

import rngtrace
from rngtrace.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", *sorted(os.path.relpath(p, ROOT)
                             for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->\s*$")
SHELL = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (1-based line of the fence), its language, its
    text, and the reason given by a skip marker (None: it runs)."""

    path: str
    line: int
    lang: str
    text: str
    skip: str | None


def blocks(path: str, text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order.

    >>> [(b.line, b.lang, b.text, b.skip) for b in blocks("x.md", "a\\n"
    ...  "<!-- docs-test: skip (needs a GPU) -->\\n```python\\nimport torch\\n```\\n"
    ...  "```\\noutput\\n```\\n")]
    [(3, 'python', 'import torch', 'needs a GPU'), (6, '', 'output', None)]
    """
    lines = text.split("\n")
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        skip = SKIP.match(lines[i - 1].strip()) if i else None
        body = [x[len(m.group("indent")):] for x in lines[i + 1:j]]
        found.append(Block(path, i + 1, m.group("lang"), "\n".join(body),
                           skip.group("why") if skip else None))
        i = j + 1
    return found


# The placeholders the docs use for the reader's code, defined before each python block.
PRELUDE = """\
import torch
from torch import nn
import rngtrace
import story_models

class MyModel(story_models.TinyViT):
    def __init__(self, cfg=None):
        super().__init__()

Net = MyModel
cfg = config = None

def build():
    return story_models.TinyViT()

build_model = build

def train(model, epochs=1):
    return story_models.train(model, steps=epochs)

model = build()
log_a = rngtrace.load("old.rngtrace.jsonl")
log_b = rngtrace.load("new.rngtrace.jsonl")
"""

# A training script for the commands: the story's model, two optimizer steps; it takes
# (and ignores) options such as --lr and --epochs.
TRAIN = """\
import torch, story_models
torch.manual_seed(0)
story_models.train(story_models.TinyViT(), steps=2)
"""


def _git(cwd: str, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def workspace(base: str, logs: tuple[str, str]) -> str:
    """A directory with what the docs' blocks name: a git repository with two commits of
    ``train.py`` (for ``compare HEAD~1 HEAD``) and uncommitted work (for ``compare
    HEAD``), ``pkg/train.py``, the story's ``logs`` (original, then with the unused
    layer) under the names the docs use, and the sibling directories ``../project-old``
    and ``../project-new``."""
    work = os.path.join(base, "work")
    story = os.path.join(ROOT, "examples", "story_models.py")
    for d in (work, os.path.join(base, "project-old"), os.path.join(base, "project-new")):
        os.makedirs(d)
        shutil.copy(story, d)
        with open(os.path.join(d, "train.py"), "w") as f:
            f.write(TRAIN)
    os.makedirs(os.path.join(work, "pkg"))
    open(os.path.join(work, "pkg", "__init__.py"), "w").close()
    shutil.copy(os.path.join(work, "train.py"), os.path.join(work, "pkg", "train.py"))
    shutil.copy(story, os.path.join(work, "pkg"))
    _git(work, "init", "-q")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    with open(os.path.join(work, "train.py"), "a") as f:
        f.write("# two\n")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "two")
    with open(os.path.join(work, "train.py"), "a") as f:
        f.write("# work in progress\n")
    for name in ("old", "a", "run", "big", "original"):
        shutil.copy(logs[0], os.path.join(work, f"{name}.rngtrace.jsonl"))
        shutil.copy(logs[0], os.path.join(work, f"{name}.jsonl"))
    for name in ("new", "b", "unused_linear", "train"):
        shutil.copy(logs[1], os.path.join(work, f"{name}.rngtrace.jsonl"))
        shutil.copy(logs[1], os.path.join(work, f"{name}.jsonl"))
    return work


@pytest.fixture(scope="module")
def story_logs(tmp_path_factory) -> tuple[str, str]:
    """The story's two runs (built, one step), recorded once for every document."""
    import story_models
    import torch

    paths = []
    for variant in ("original", "unused_linear"):
        torch.manual_seed(0)
        with rngtrace.record() as log:
            story_models.train(story_models.TinyViT(variant=variant), steps=1)
        paths.append(str(tmp_path_factory.mktemp("logs") / f"{variant}.rngtrace.jsonl"))
        log.save(paths[-1])
    return paths[0], paths[1]


def _make_targets() -> set[str]:
    with open(os.path.join(ROOT, "Makefile")) as f:
        return set(re.findall(r"^([a-z][\w-]*):", f.read(), flags=re.M))


def run_python(block: Block) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
    exec(compile(block.text, f"{block.path}:{block.line}", "exec"), namespace)


def run_command(block: Block, line: str) -> str | None:
    """Run one command line of a shell block; a message when it failed, else None."""
    words = shlex.split(line, comments=True)
    if not words:
        return None
    if words[0] == "make":
        missing = [t for t in words[1:] if "=" not in t and t not in _make_targets()]
        return f"no such make target: {missing}" if missing else None
    if words[0] == "python":
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        if script and not os.path.exists(os.path.join(ROOT, script)):
            return f"no such file: {script}"
        return None
    if words[0] != "rngtrace":
        return None  # pip, apt-get, source...: not run from the test suite
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(words[1:])
        except SystemExit as e:  # --help
            code = int(e.code or 0)
        except BaseException:
            return traceback.format_exc()
    if code == 2 and "install Graphviz" in err.getvalue() and shutil.which("dot") is None:
        return None  # SVG asked for without Graphviz: the DOT source was written instead
    if code not in (0, 1) or "Traceback" in err.getvalue():
        return f"exit code {code}: {err.getvalue().strip()[-2000:]}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_every_block_of_the_docs_runs(doc, tmp_path, monkeypatch, story_logs):
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        found = blocks(doc, f.read())
    work = workspace(str(tmp_path), story_logs)
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(work)
    failures = []
    for block in found:
        if block.skip is not None or block.lang not in SHELL | {"python"}:
            continue
        if block.lang == "python":
            try:
                run_python(block)
            except BaseException:
                failures.append(f"{block.path}:{block.line}: {traceback.format_exc()}")
            continue
        for k, line in enumerate(block.text.split("\n")):
            why = run_command(block, line)
            if why is not None:
                failures.append(f"{block.path}:{block.line + 1 + k}: {line}\n{why}")
    assert not failures, "\n\n".join(failures)


def test_skip_markers_give_a_reason_and_sit_on_a_fence():
    """A marker without a reason, or not right before a fence, is a mistake."""
    bad = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            lines = f.read().split("\n")
        for i, x in enumerate(lines):
            if x.lstrip().startswith("<!--") and "docs-test" in x and (
                    not SKIP.match(x.strip()) or i + 1 == len(lines)
                                     or not FENCE.match(lines[i + 1])):
                bad.append(f"{doc}:{i + 1}: {x}")
    assert bad == []
