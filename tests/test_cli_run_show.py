"""``rngtrace run`` and ``rngtrace show``: real runs in subprocesses, exit codes, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

import rngtrace
from helpers import record_story
from rngtrace.cli import ERROR, OK, main
from rngtrace.cli.run import default_output

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

TRAIN = textwrap.dedent(f"""\
    import sys
    sys.path.insert(0, {EXAMPLES!r})
    import torch, story_models
    torch.manual_seed(0)
    model = story_models.TinyViT()
    story_models.train(model, steps=int(sys.argv[1]))
    print("trained", sys.argv[1:], __name__)
""")

# TinyViT draws 21 values tensors as it is built (10 Linear layers x weight and bias,
# and pos); dataset() 2 (randn, randint on its own generator); iter(DataLoader) 3
# (random_ twice on the default generator, randperm on the sampler's generator); each
# training step 2 (the dropout of each of the 2 blocks).
BUILD, DATA, LOADER, PER_STEP = 21, 2, 3, 2


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    """The installed console script if there is one, else ``python -m rngtrace``."""
    exe = shutil.which("rngtrace", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "rngtrace"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_run_then_show_for_real(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    r = subprocess.run([sys.executable, "-m", "rngtrace", "run", "train.py", "2", "--flag"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "trained ['2', '--flag'] __main__" in r.stdout  # its argv and __name__
    n = BUILD + DATA + LOADER + 2 * PER_STEP  # 30
    assert r.stderr.strip() == (f"rngtrace: {n} draws, 2 optimizer steps, 3 generators "
                                "recorded in train.rngtrace.jsonl")
    log = rngtrace.load(tmp_path / "train.rngtrace.jsonl")
    assert log.complete and len(log.draws) == n and log.steps == 2
    assert log.meta["argv"] == ["train.py", "2", "--flag"]

    s = _cli("show", "train.rngtrace.jsonl", cwd=tmp_path)
    assert s.returncode == 0, s.stderr
    lines = s.stdout.splitlines()
    assert max(len(x) for x in lines) <= 100
    assert lines[0].startswith("train.rngtrace.jsonl: rngtrace log, recorded ")
    assert "command: train.py 2 --flag" in lines
    assert f"rngtrace log: {n} draws, 6,693 values, 3 generators, 1 event" in lines
    # the listing: index, module, target relative to it, op, shape, generator, site
    qkv = [x.split() for x in lines if x.split()[:2] == ["3", "blocks.0.attn.qkv"]]
    assert len(qkv) == 1 and qkv[0][:6] == ["3", "blocks.0.attn.qkv", "weight", "uniform_",
                                            "48x16", "default:cpu"]
    assert qkv[0][6].endswith("story_models.py:24")
    assert sum(1 for x in lines if "bernoulli_" in x) == 2 * PER_STEP


@pytest.mark.slow
def test_run_steps_and_output(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    r = _cli("run", "--steps", "1", "-o", "one.jsonl", "train.py", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # the program is ended after step 1 of 3: it never prints "trained"
    assert "trained" not in r.stdout
    assert r.stderr.splitlines() == [
        "rngtrace run: ended the program after optimizer step 1 (--steps 1; --run-on lets "
        "it go on)",
        "rngtrace: 28 draws, 1 optimizer step, 3 generators recorded in one.jsonl"]
    log = rngtrace.load(tmp_path / "one.jsonl")
    assert len(log.draws) == BUILD + DATA + LOADER + PER_STEP  # 28: one step recorded
    assert log.steps == 1 and log.complete
    # --run-on: the same window, and the program runs its 3 steps to the end; the log
    # it replaces was one
    r = _cli("run", "--steps", "1", "--run-on", "-o", "one.jsonl", "train.py", "3",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "trained ['3'] __main__" in r.stdout
    assert r.stderr.strip() == ("rngtrace: 28 draws, 1 optimizer step, 3 generators "
                                "recorded in one.jsonl (replaced the previous log)")
    assert len(rngtrace.load(tmp_path / "one.jsonl").draws) == 28
    assert sorted(os.listdir(tmp_path)) == ["one.jsonl", "train.py"]  # no .partial left


@pytest.mark.slow
def test_run_level_module_records_the_light_mode(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    r = _cli("run", "--level", "module", "-o", "light.jsonl", "train.py", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    log = rngtrace.load(tmp_path / "light.jsonl")
    assert log.level == "module" and log.steps == 2 and log.complete
    # building, the data and the loader draw outside modules: one record; then the
    # dropout of each block, each step
    assert [(d.op, d.module, d.step) for d in log.draws] == [("module", None, 0)] + [
        ("module", f"blocks.{b}.attn.attn_drop", s) for s in range(2) for b in range(2)]


@pytest.mark.slow
def test_run_program_that_raises(tmp_path):
    (tmp_path / "bad.py").write_text("import torch\ntorch.rand(2)\n\n1 / 0\n")
    r = _cli("run", "bad.py", cwd=tmp_path)
    assert r.returncode == 1
    # python's traceback, from the program's frame on, then where the log went
    assert r.stderr.splitlines() == [
        "Traceback (most recent call last):",
        '  File "bad.py", line 4, in <module>',
        "    1 / 0",
        "    ~~^~~",
        "ZeroDivisionError: division by zero",
        "rngtrace: 1 draw, 0 optimizer steps, 1 generator recorded in bad.rngtrace.jsonl "
        "(incomplete: the program raised)",
    ]
    log = rngtrace.load(tmp_path / "bad.rngtrace.jsonl")
    assert not log.complete and [d.op for d in log.draws] == ["aten::rand"]


def _run_here(tmp_path, capsys, *argv: str) -> tuple[int, str, str]:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = main(list(argv))
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_exit_codes_are_the_programs(tmp_path, capsys):
    (tmp_path / "ex.py").write_text(
        "import sys, torch\ntorch.rand(1)\n"
        "code = sys.argv[1]\nsys.exit(None if code == 'none' else "
        "int(code) if code.isdigit() else code)\n")
    for arg, want in (("none", 0), ("0", 0), ("3", 3), ("bye", 1)):
        code, _, err = _run_here(tmp_path, capsys, "run", "ex.py", arg)
        assert code == want, (arg, err)
        # sys.exit is the program ending on purpose: the recording is complete
        assert rngtrace.load(tmp_path / "ex.rngtrace.jsonl").complete
    assert err.splitlines()[0] == "bye"  # sys.exit("bye") prints it, as python does


def test_run_module_like_python_m(tmp_path, capsys):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("import torch\ntorch.rand(1)\n")
    (tmp_path / "pkg" / "job.py").write_text(
        "import sys, torch\ntorch.rand(2)\n"
        "print(sys.argv, sys.path[0] == __import__('os').getcwd(), __name__)\n")
    code, out, err = _run_here(tmp_path, capsys, "run", "-m", "pkg.job", "--x", "1")
    assert code == OK, err
    assert out.strip() == f"[{str(tmp_path / 'pkg' / 'job.py')!r}, '--x', '1'] True __main__"
    log = rngtrace.load(tmp_path / "job.rngtrace.jsonl")
    # the package's __init__ runs inside the recording, as part of the program
    assert [d.shape for d in log.draws] == [(1,), (2,)]
    code, _, err = _run_here(tmp_path, capsys, "run", "-m", "pkg.nothing")
    assert code == 1 and err.splitlines()[0] == "rngtrace run: No module named pkg.nothing"


def test_run_restores_argv_and_path(tmp_path, capsys):
    (tmp_path / "p.py").write_text("import sys\nassert sys.argv == ['p.py', 'a']\n")
    argv, path = list(sys.argv), list(sys.path)
    code, _, err = _run_here(tmp_path, capsys, "run", "p.py", "a")
    assert code == OK, err
    assert sys.argv == argv and sys.path == path


def test_run_passes_double_dash_to_the_program_as_python_does(tmp_path, capsys):
    (tmp_path / "a.py").write_text("import sys\nprint(sys.argv[1:])\n")
    # after the program, '--' is the program's (python keeps it in sys.argv)...
    code, out, err = _run_here(tmp_path, capsys, "run", "a.py", "--", "x", "--y")
    assert code == OK, err
    assert out.strip() == "['--', 'x', '--y']"
    # ...before it, it ends rngtrace's options
    code, out, err = _run_here(tmp_path, capsys, "run", "-o", "o.jsonl", "--", "a.py", "x")
    assert code == OK, err
    assert out.strip() == "['x']" and (tmp_path / "o.jsonl").exists()


def test_default_output_names():
    assert default_output("scripts/train.py", module=False) == "train.rngtrace.jsonl"
    assert default_output("app/", module=False) == "app.rngtrace.jsonl"
    assert default_output("pkg.train", module=True) == "train.rngtrace.jsonl"


@pytest.mark.parametrize(("argv", "words"), [
    (["nope"], "unknown verb 'nope' (the verbs: run, show, diff, compare, bisect, dot, ranks, "
               "check;"),
    (["shwo", "x.jsonl"], "unknown verb 'shwo' (did you mean 'show'?"),
    (["show", "good.jsonl", "--limt", "3"], "rngtrace show: unrecognized arguments: --limt 3 "
     "(did you mean --limit?) (see 'rngtrace show --help')"),
    (["run", "--lr", "0.1", "p.py"], "rngtrace run: unrecognized arguments: --lr (the "
     "program's own options go after PROGRAM: rngtrace run [OPTIONS] PROGRAM --lr ...)"),
    (["run", "--run-on", "p.py"], "--run-on goes with --steps N"),
    (["run", "-o", "p.py", "p.py"], "-o p.py is also the input p.py"),
    (["run", "-o", "notes.txt", "p.py"], "-o notes.txt exists and is not an rngtrace log"),
    (["run", "-o", "/dev/full", "p.py"], "-o /dev/full is not a regular file"),
    (["run", "-o", ".", "p.py"], "-o . is a directory"),
    (["run", "-o", "good.jsonl", "p.py", "good.jsonl"], "is also the input good.jsonl"),
    (["run"], "which program?"),
    (["run", "missing.py"], "cannot open 'missing.py': no such file"),
    (["run", "--steps", "0", "p.py"], "--steps must be 1 or more"),
    (["run", "--steps", "x", "p.py"], "invalid int value"),
    (["run", "--level", "kernel", "p.py"], "invalid choice: 'kernel'"),
    (["run", "-m", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
    (["run", "-m", "a/b.py"], "is not a module name"),
    (["run", "-o", "no/such/dir/x.jsonl", "p.py"], "cannot write the log no/such/dir/x.jsonl: "
     "no such directory"),
    (["show"], "required: FILE"),
    (["show", "missing.jsonl"], "missing.jsonl: no such file"),
    (["show", "p.py"], "p.py:1: not JSON"),
    (["show", "good.jsonl", "--limit", "-1"], "--limit must be 0 or more"),
    (["show", "good.jsonl", "--phase", "train"], "invalid choice: 'train'"),
])
def test_bad_command_lines_exit_2_with_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "p.py").write_text("print('never run')\n")
    (tmp_path / "notes.txt").write_text("my notes\n")
    rngtrace.Log().save(tmp_path / "good.jsonl")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, out, err = _run_here(tmp_path, capsys, *argv)
    assert code == ERROR
    assert "never run" not in out
    assert len(err.splitlines()) == 1 and err.startswith("rngtrace: error: "), err
    assert words in err
    # nothing written, nothing replaced: the program, the notes and the log as they were
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("verb", ["run", "show"])
def test_help_has_an_example(capsys, verb):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: rngtrace {verb}" in out and f"  rngtrace {verb} " in out


def _story_log(tmp_path):
    log = record_story()
    path = tmp_path / "story.jsonl"
    log.save(path)
    return path, log


def test_show_filters(tmp_path, capsys):
    path, _ = _story_log(tmp_path)
    code, out, _ = _run_here(tmp_path, capsys, "show", str(path), "--phase", "init",
                             "--module", "blocks.0")
    assert code == OK
    # blocks.0 and its submodules drew 8 init values tensors: 4 Linear x weight and bias
    assert "rngtrace log: 8 draws" in out
    assert "(only draws matching --phase init --module blocks.0)" in out
    code, out, _ = _run_here(tmp_path, capsys, "show", str(path), "--module", "*.qkv",
                             "--limit", "1")
    rows = [x for x in out.splitlines() if "uniform_" in x]
    assert len(rows) == 1 and "... 3 more draws (--limit 0 lists them all)" in out
    code, out, _ = _run_here(tmp_path, capsys, "show", str(path), "--by-module")
    assert "uniform_" not in out and "blocks.0.attn.qkv" in out



def test_show_json_is_the_table_and_the_listing_as_data(tmp_path, capsys):
    """--json holds what the text shows, filtered the same way: blocks.0 draws 8 times
    at init (as test_show_filters counts), 3 of them listed; the unused layers of the
    tidy copy named, as show lists them."""
    log = record_story("unused_linear")
    path = tmp_path / "story.jsonl"
    log.save(path)
    code, out, _ = _run_here(tmp_path, capsys, "show", str(path), "--json", "--phase",
                             "init", "--module", "blocks.0", "--limit", "3")
    assert code == OK
    data = json.loads(out)
    matching = [d for d in log.draws if d.phase == "init" and d.where.startswith("blocks.0")]
    assert (data["show_json"], data["level"], data["complete"]) == (1, "op", True)
    assert (data["draws"], data["matching"]) == (len(log.draws), len(matching))
    assert data["filter"] == {"phase": "init", "module": "blocks.0"}
    assert sum(m["draws"] for m in data["modules"]) == len(matching) == 10  # 8 + linear's 2
    assert data["listed"] == [json.loads(json.dumps(dataclasses.asdict(d)))
                              for d in matching[:3]]
    assert [u["module"] for u in data["unused"]] == ["blocks.0.attn.linear",
                                                      "blocks.1.attn.linear"]
    assert data["meta"] == json.loads(json.dumps(rngtrace.load(path).meta))

def test_show_incomplete_log_warns_on_stderr(tmp_path, capsys):
    path, _ = _story_log(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:6]) + lines[6][:15])  # header, draws 0-4, cut draw 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # show turns the warning into a message
        code, out, err = _run_here(tmp_path, capsys, "show", str(path))
    assert code == OK
    assert "the last line is cut short" in err and err.startswith("rngtrace: warning: ")
    assert "rngtrace log: 5 draws" in out and "[INCOMPLETE]" in out


def test_show_fits_100_columns_but_never_cuts_a_path(tmp_path, capsys):
    """Columns are narrowed to fit 100 characters, but a module path is never cut: cut
    from the left, layer 0's and layer 1's paths printed the same. A path too long to
    fit runs over instead."""
    def draw(i, module):
        return rngtrace.Draw(
            index=i, op="aten::bernoulli_.float", module=module,
            module_type="Dropout", target=None, phase="forward", step=3,
            shape=(512, 1024, 64), dtype="float32", device="cpu", numel=512 * 1024 * 64,
            args={}, generator="generator:12", state_before=None, state_after=None,
            consumed=False,
            site="/very/long/path/to/some/project/src/models/transformer/layers.py:1234",
            code=None, api=None)

    deep = ["encoder." * 6 + f"layer.{k}.attention.dropout" for k in (0, 1)]
    rngtrace.Log(draws=[draw(0, deep[0]), draw(1, deep[1]), draw(2, "drop")]).save(
        tmp_path / "long.jsonl")
    code, out, _ = _run_here(tmp_path, capsys, "show", "long.jsonl", "--no-fold")
    assert code == OK
    rows = [x for x in out.splitlines() if "bernoulli_" in x]
    assert [deep[0] in rows[0], deep[1] in rows[1]] == [True, True]  # whole, told apart
    assert all(r.endswith("layers.py:1234") for r in rows)
    assert all("512x1024x64  generator:12" in r for r in rows)
    assert "('-': drew nothing)" in out
    # with short paths, the long site and shape are narrowed to fit 100 columns
    rngtrace.Log(draws=[draw(0, "drop")]).save(tmp_path / "short.jsonl")
    code, out, _ = _run_here(tmp_path, capsys, "show", "short.jsonl")
    row = next(x for x in out.splitlines() if "bernoulli_" in x)
    assert max(len(x) for x in out.splitlines()) <= 100
    assert row.startswith("0  -  drop") and row.endswith("layers.py:1234")


def test_show_folds_numbered_blocks_and_takes_a_width(tmp_path, capsys):
    # 12 blocks whose Linear drew alike (2 draws of 6 values each): one row for them
    draws = [rngtrace.Draw(
        index=2 * k + j, op="aten::uniform_", module=f"h.{k}.mlp", module_type="Linear",
        target=f"h.{k}.mlp.{'weight' if j == 0 else 'bias'}", phase="init", step=0,
        shape=(3,), dtype="float32", device="cpu", numel=3, args={},
        generator="default:cpu", state_before=None, state_after=None, consumed=True,
        site="net.py:3", code=None, api=None, model="Net")
        for k in range(12) for j in range(2)]
    rngtrace.Log(draws=draws).save(tmp_path / "blocks.jsonl")
    code, out, _ = _run_here(tmp_path, capsys, "show", "blocks.jsonl", "--by-module")
    assert code == OK
    rows = [x for x in out.splitlines() if x.startswith("h.")]
    assert len(rows) == 1 and rows[0].split()[:4] == ["h.{0..11}.mlp", "Linear", "2", "6"]
    assert "numbered blocks that drew alike" in out
    code, out, _ = _run_here(tmp_path, capsys, "show", "blocks.jsonl", "--by-module",
                             "--no-fold")
    assert len([x for x in out.splitlines() if x.startswith("h.")]) == 12
    code, out, _ = _run_here(tmp_path, capsys, "show", "blocks.jsonl", "--width", "60")
    listed = [x for x in out.splitlines() if "uniform_" in x]
    assert len(listed) == 24 and max(len(x) for x in listed) <= 60


@pytest.mark.slow
def test_reading_logs_and_the_pytest_plugin_do_not_import_torch(tmp_path):
    """torch is imported by recording only: `rngtrace show`/`diff` start fast, and the
    pytest plugin (loaded by every pytest run where rngtrace is installed) costs nothing."""
    torch.manual_seed(0)
    with rngtrace.record() as log:
        torch.nn.Linear(2, 2)
    path = tmp_path / "log.rngtrace.jsonl"
    log.save(path)
    script = (
        "import sys, rngtrace, rngtrace.pytest_plugin\n"
        "from rngtrace.cli import main\n"
        f"codes = [main(['show', {str(path)!r}]), main(['diff', {str(path)!r}, {str(path)!r}])]\n"
        "assert codes == [0, 0], codes\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert callable(rngtrace.record) and 'torch' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "weight" in out.stdout


def test_run_failed_start_keeps_the_previous_log(tmp_path, capsys):
    (tmp_path / "ex.py").write_text(
        "import sys, torch\nif sys.argv[1:] == ['bad']:\n    sys.exit(2)\ntorch.rand(3)\n")
    code, _, err = _run_here(tmp_path, capsys, "run", "ex.py")
    assert code == OK, err
    good = (tmp_path / "ex.rngtrace.jsonl").read_bytes()
    # the program fails at its argument parsing, before drawing: the good log stays
    code, _, err = _run_here(tmp_path, capsys, "run", "ex.py", "bad")
    assert code == 2
    assert err.strip() == ("rngtrace: the program failed before its first draw: "
                           "ex.rngtrace.jsonl is left as it was")
    assert (tmp_path / "ex.rngtrace.jsonl").read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["ex.py", "ex.rngtrace.jsonl"]


@pytest.mark.slow
def test_run_reports_a_log_it_could_not_write(tmp_path):
    """A write that fails mid-run (here: a file size limit, as a full disk would) is an
    error, exit 2; the previous log is left as it was and the partial one kept."""
    (tmp_path / "many.py").write_text("import torch\nfor _ in range(200):\n"
                                      "    torch.rand(1)\n")
    rngtrace.Log().save(tmp_path / "many.rngtrace.jsonl")
    before = (tmp_path / "many.rngtrace.jsonl").read_bytes()
    limit = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"  # a failed write, not a kill
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        "from rngtrace.cli import main\nsys.exit(main(['run', 'many.py']))\n")
    r = subprocess.run([sys.executable, "-c", limit], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == ERROR, r.stderr
    partial = [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
    assert len(partial) == 1
    assert r.stderr.splitlines()[-1] == (
        "rngtrace: error: the log could not be written in full (see the warning above); "
        f"what was written is in {partial[0]}, and many.rngtrace.jsonl is left as it was")
    assert (tmp_path / "many.rngtrace.jsonl").read_bytes() == before
    assert os.path.getsize(tmp_path / partial[0]) <= 2000


@pytest.mark.slow
def test_run_sigterm_finishes_the_log(tmp_path):
    import signal
    import time

    (tmp_path / "loop.py").write_text(
        "import time, torch\ntorch.rand(2)\nprint('ready', flush=True)\n"
        "while True:\n    time.sleep(0.05)\n")
    p = subprocess.Popen([sys.executable, "-m", "rngtrace", "run", "loop.py"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == [
        "rngtrace run: the program was ended by SIGTERM",
        "rngtrace: 1 draw, 0 optimizer steps, 1 generator recorded in loop.rngtrace.jsonl "
        "(incomplete: the program was interrupted)"]
    log = rngtrace.load(tmp_path / "loop.rngtrace.jsonl")
    assert not log.complete and [d.shape for d in log.draws] == [(2,)]


def test_print_log_after_streaming_says_what_was_written(tmp_path):
    path = tmp_path / "s.rngtrace.jsonl"
    with rngtrace.record(path=path) as log:
        torch.nn.Linear(2, 2)  # weight and bias: 2 draws
    assert str(log).splitlines()[0] == (f"rngtrace log: 2 draws written, 1 generator, "
                                        f"see {path}")


HOSTILE = "blocks.0\x1b[2J\x07\r\u202eexe.txt"  # clear screen, bell, CR, right-to-left


def _hostile_log(path, module: str = HOSTILE) -> str:
    d = rngtrace.Draw(
        index=0, op="aten::uniform_", module=module, module_type="Linear\x1b[31m",
        target=module + ".weight", phase="init", step=0, shape=(2,), dtype="float32",
        device="cpu", numel=2, args={}, generator="default:cpu", state_before=None,
        state_after=None, consumed=True, site="evil.py:1\x1b]0;title\x07", code="x\x1b",
        api=None)
    rngtrace.Log(draws=[d]).save(path)
    return str(path)


@pytest.mark.parametrize("verb", ["show", "diff", "dot"])
def test_log_text_is_printed_with_control_characters_escaped(tmp_path, capsys, verb):
    a = _hostile_log(tmp_path / "a.jsonl")
    b = _hostile_log(tmp_path / "b.jsonl", module="other\x1b[1m")
    argv = {"show": ["show", a], "diff": ["diff", a, b], "dot": ["dot", a, b, "-o", "-"]}[verb]
    code, out, err = _run_here(tmp_path, capsys, *argv)
    assert code in (OK, 1), err
    bad = [c for c in out if (ord(c) < 32 and c not in "\n\t") or c in "\x7f\u202e"]
    assert bad == []
    assert "\\x1b" in out and "\\u202e" in out
    if verb != "dot":  # the name, escaped, still readable (DOT quotes it its own way)
        assert "blocks.0\\x1b[2J\\x07\\x0d\\u202eexe.txt" in out
    assert out.count("\n") > 3  # lines are kept


def test_show_light_log_has_no_empty_columns(tmp_path, capsys):
    import story_models

    path = tmp_path / "light.jsonl"
    with rngtrace.record(level="module", path=path):
        story_models.train(story_models.TinyViT(), steps=2)
    code, out, _ = _run_here(tmp_path, capsys, "show", str(path))
    assert code == OK
    lines = out.splitlines()
    # the table: no offset column on CPU; the listing: module, phase, step, generator,
    # site (no target, op "module", shape "()" or offset)
    assert [x.split() for x in lines if x.startswith("module ")] == [
        ["module", "type", "calls", "phases", "generators"]]
    head = next(x.split() for x in lines if x.lstrip().startswith("#"))
    assert head == ["#", "module", "phase", "step", "generator", "site"]
    rows = [x.split() for x in lines if "attn_drop" in x and "default:cpu" in x
            and x.split()[0].isdigit()]
    # one record per dropout call: 2 blocks x 2 steps
    assert [r[1:4] for r in rows] == [[f"blocks.{b}.attn.attn_drop", "forward", str(s)]
                                      for s in range(2) for b in range(2)]
    assert all(len(r) == 6 for r in rows)  # index, module, phase, step, generator, site


@pytest.mark.slow
def test_no_numpy_warning_from_our_entry_points(tmp_path):
    """Without NumPy, torch warns "Failed to initialize NumPy" as it is imported; when
    rngtrace imports it (rngtrace run, record, stable_init), the warning is not shown."""
    (tmp_path / "p.py").write_text("import torch\ntorch.rand(1)\n")
    no_numpy = "import sys\nsys.modules['numpy'] = None\n"  # as if it were not installed
    for code in ("from rngtrace.cli import main\nsys.exit(main(['run', 'p.py']))\n",
                 "import rngtrace\nwith rngtrace.record():\n    pass\n",
                 "import rngtrace\n"  # torch only through rngtrace, in the factory:
                 "rngtrace.stable_init(lambda: __import__('torch').nn.Linear(2, 2), seed=0)\n"):
        r = subprocess.run([sys.executable, "-c", no_numpy + code], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "NumPy" not in r.stderr, code
    # the control: the same import of torch, not through rngtrace, warns
    r = subprocess.run([sys.executable, "-c", no_numpy + "import torch\n"],
                       capture_output=True, text=True, timeout=300)
    assert "Failed to initialize NumPy" in r.stderr


def test_run_program_that_changes_directory(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    (tmp_path / "cd.py").write_text("import os, torch\nos.chdir('sub')\ntorch.rand(1)\n")
    code, _, err = _run_here(tmp_path, capsys, "run", "-o", "cd.jsonl", "cd.py")
    assert code == OK, err
    # the log is where -o said, relative to where rngtrace was started
    assert len(rngtrace.load(tmp_path / "cd.jsonl").draws) == 1
    assert os.listdir(tmp_path / "sub") == []


def test_show_names_the_rank_of_a_log_from_a_job(tmp_path, capsys):
    log = rngtrace.Log(draws=[], meta={"dist": {"rank": 1, "local_rank": 1, "world_size": 2,
                                                "backend": "gloo", "host": "vm"}})
    log.save(tmp_path / "r1.jsonl")
    code, out, _ = _run_here(tmp_path, capsys, "show", "r1.jsonl")
    assert code == OK
    assert "rank 1 of 2 (local rank 1, backend gloo, host vm)" in out


def test_run_says_it_records_when_a_person_watches(tmp_path, capsys, monkeypatch):
    (tmp_path / "p.py").write_text("import torch\ntorch.rand(2)\n")
    code, _, err = _run_here(tmp_path, capsys, "run", "p.py")
    assert code == OK and "recording" not in err  # not a terminal: no progress line
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = _run_here(tmp_path, capsys, "run", "--steps", "3", "p.py")
    assert code == OK
    assert err.splitlines()[0] == ("rngtrace run: recording p.py until optimizer step 3 "
                                   "(Ctrl-C ends it; the log is kept)")


def test_show_wraps_an_event_instead_of_cutting_it(tmp_path, capsys):
    from helpers import make_draw

    detail = ("the next record of Net (the model) may hold draws of "
              + ", ".join(f"blocks.{i}.inner" for i in range(8))
              + ", not read then (they had drawn nothing in 2 calls); they are read from "
              "now on")
    log = rngtrace.Log(draws=[make_draw(0), make_draw(1)],
                       events=[rngtrace.Event("unread", "default:cpu", 1, None, detail)])
    path = tmp_path / "a.rngtrace.jsonl"
    rngtrace.save(log, path)
    assert main(["show", str(path), "--width", "80"]) == OK
    out = capsys.readouterr().out
    assert "..." not in out
    lines = out.splitlines()
    for start in ("event: unread", "  -- unread"):  # the table, then the listing
        at = next(i for i, line in enumerate(lines) if line.startswith(start))
        end = next(i for i in range(at + 1, len(lines)) if not lines[i].startswith("    "))
        assert end - at >= 3 and all(len(line) <= 80 for line in lines[at:end])
        assert detail in " ".join(line.strip() for line in lines[at:end])
