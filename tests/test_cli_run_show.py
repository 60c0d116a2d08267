"""``rngtrace run`` and ``rngtrace show``: real runs in subprocesses, exit codes, errors."""

from __future__ import annotations

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
    log = rngtrace.load(tmp_path / "one.jsonl")
    assert len(log.draws) == BUILD + DATA + LOADER + PER_STEP  # 28: one step recorded
    assert log.steps == 1 and log.complete


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
    (["nope"], "invalid choice"),
    (["run"], "which program?"),
    (["run", "missing.py"], "cannot open 'missing.py': no such file"),
    (["run", "--steps", "0", "p.py"], "--steps must be 1 or more"),
    (["run", "--steps", "x", "p.py"], "invalid int value"),
    (["run", "--level", "kernel", "p.py"], "invalid choice: 'kernel'"),
    (["run", "-m", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
    (["run", "-m", "a/b.py"], "is not a module name"),
    (["run", "-o", "no/such/dir/x.jsonl", "p.py"], "cannot write the log"),
    (["show"], "required: FILE"),
    (["show", "missing.jsonl"], "missing.jsonl: no such file"),
    (["show", "p.py"], "p.py:1: not JSON"),
    (["show", "good.jsonl", "--limit", "-1"], "--limit must be 0 or more"),
    (["show", "good.jsonl", "--phase", "train"], "invalid choice: 'train'"),
])
def test_bad_command_lines_exit_2_with_one_line(tmp_path, capsys, argv, words):
    (tmp_path / "p.py").write_text("print('never run')\n")
    rngtrace.Log().save(tmp_path / "good.jsonl")
    code, out, err = _run_here(tmp_path, capsys, *argv)
    assert code == ERROR
    assert "never run" not in out
    assert len(err.splitlines()) == 1 and err.startswith("rngtrace: error: "), err
    assert words in err
    assert not (tmp_path / "p.rngtrace.jsonl").exists()


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


def test_show_fits_100_columns_with_long_names(tmp_path, capsys):
    d = rngtrace.Draw(
        index=0, op="aten::bernoulli_.float", module="encoder." * 12 + "dropout",
        module_type="Dropout", target=None, phase="forward", step=3, shape=(512, 1024, 64),
        dtype="float32", device="cpu", numel=512 * 1024 * 64, args={}, generator="generator:12",
        state_before=None, state_after=None, consumed=False,
        site="/very/long/path/to/some/project/src/models/transformer/layers.py:1234",
        code=None, api=None)
    rngtrace.Log(draws=[d]).save(tmp_path / "long.jsonl")
    code, out, _ = _run_here(tmp_path, capsys, "show", "long.jsonl")
    assert code == OK
    assert max(len(x) for x in out.splitlines()) <= 100
    row = next(x for x in out.splitlines() if "bernoulli_" in x)
    assert row.startswith("0  -  ...") and row.endswith("layers.py:1234")
    assert ".dropout " in row and "512x1024x64  generator:12" in row
    assert "(1 = '-': drew nothing)" not in out and "('-': drew nothing)" in out



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
