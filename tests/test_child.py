"""What a run started by compare or bisect does for them (rngtrace.cli.child): the
read-only guard over the working tree, and dying with its parent. Each test runs a
small Python (no torch) in a subprocess: an audit hook cannot be removed once set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rngtrace.cli.child import PARENT_ENV, guard_env

GUARDED = r"""
import json, os, shutil, sys
from rngtrace.cli.child import install_guard

install_guard()
top = sys.argv[1]
done = {}


def attempt(name, action):
    try:
        action()
        done[name] = "done"
    except PermissionError as e:
        done[name] = "refused" if "may not change your working tree" in str(e) else str(e)


attempt("append to a linked file", lambda: open("data/a.txt", "a").write("more\n"))
attempt("overwrite a linked file", lambda: open("data/b.txt", "w").write("new\n"))
attempt("create in a mirrored directory", lambda: open("data/c.txt", "w").write("c\n"))
attempt("read through a whole link", lambda: open("big/y.txt").read())
attempt("create in a directory linked whole", lambda: open("big/x.txt", "w"))
attempt("remove in a directory linked whole", lambda: os.remove("big/y.txt"))
attempt("rename into a directory linked whole", lambda: os.rename("data/c.txt", "big/c"))
attempt("write by absolute path", lambda: open(os.path.join(top, "data", "a.txt"), "a"))
attempt("os.open for writing", lambda: os.open(os.path.join(top, "t.txt"), os.O_CREAT))
attempt("write the log it was given",
        lambda: open(os.path.join(top, "logs", "x.rngtrace.jsonl.9.partial"), "w"))
attempt("remove the mirrored directory", lambda: shutil.rmtree("data"))
print(json.dumps(done))
"""


@pytest.mark.slow  # starts a Python
def test_the_guard_copies_on_write_and_refuses_other_changes(tmp_path):
    top, copy = tmp_path / "top", tmp_path / "copy"
    for d in (top / "data", top / "big", top / "logs", copy / "data"):
        d.mkdir(parents=True)
    for name in ("data/a.txt", "data/b.txt", "big/y.txt"):
        (top / name).write_text(f"{name}\n")
    for name in ("a.txt", "b.txt"):  # as ignored.link_ignored makes them
        os.symlink(top / "data" / name, copy / "data" / name)
    os.symlink(top / "big", copy / "big")
    env = {**os.environ, **guard_env(str(top), [str(top / "logs" / "x.rngtrace.jsonl")])}
    r = subprocess.run([sys.executable, "-c", GUARDED, str(top)], cwd=copy, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "append to a linked file": "done",
        "overwrite a linked file": "done",
        "create in a mirrored directory": "done",
        "read through a whole link": "done",
        "create in a directory linked whole": "refused",
        "remove in a directory linked whole": "refused",
        "rename into a directory linked whole": "refused",
        "write by absolute path": "refused",
        "os.open for writing": "refused",
        "write the log it was given": "done",
        "remove the mirrored directory": "done",
    }
    # the working tree is as it was, but for the log; the copy had its own files
    assert {str(p.relative_to(top)): p.read_text() for p in top.rglob("*") if p.is_file()} \
        == {"data/a.txt": "data/a.txt\n", "data/b.txt": "data/b.txt\n",
            "big/y.txt": "big/y.txt\n", "logs/x.rngtrace.jsonl.9.partial": ""}
    assert not (copy / "data").exists()


WATCHED = """
import os, sys, time
from rngtrace.cli.child import watch_parent

watch_parent()
print(os.getpid(), flush=True)
time.sleep(60)
"""

MIDDLE = """
import os, subprocess, sys
env = dict(os.environ)
env[sys.argv[2]] = str(os.getpid())
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=env,
                         stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


@pytest.mark.slow  # starts two Pythons
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_watched_run_dies_with_its_parent_even_by_kill_9():
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, WATCHED, PARENT_ENV],
                              stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    pid = int(middle.stdout.readline())
    assert _alive(pid)
    middle.send_signal(signal.SIGKILL)
    middle.wait()
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
