"""PROGRAM on the command lines of run, compare and bisect (rngtrace.cli.program):
-m as python reads it, rngtrace's options between the revisions and PROGRAM, and the
hints for the usual slips."""

from __future__ import annotations

import argparse
import sys

import pytest

from rngtrace.cli import ERROR, UsageError, main
from rngtrace.cli.program import (
    RUN_OPTIONS,
    SIDE_OPTIONS,
    Program,
    check_program,
    misplaced,
    read_options,
)


def _ns() -> argparse.Namespace:
    return argparse.Namespace(steps=None, output=None, level="op", json=False,
                              run_on=False, module=False, no_ignored=False)


def test_read_options_up_to_the_program_and_m_as_python_reads_it():
    ns = _ns()
    words = ["--steps", "2", "--level=module", "-o", "logs", "-m", "pkg.train", "--lr", "1"]
    assert read_options("rngtrace compare", words, ns) == ["pkg.train", "--lr", "1"]
    assert (ns.steps, ns.level, ns.output, ns.module) == (2, "module", "logs", True)
    # after '--', '-m' is still the module flag (python -m), and the rest the program's
    ns = _ns()
    assert read_options("rngtrace compare", ["--", "-m", "pkg.train", "-o", "x"], ns) == [
        "pkg.train", "-o", "x"]
    assert ns.module and ns.output is None
    ns = _ns()
    assert read_options("rngtrace compare", ["--no-ignored", "--", "-x.py"], ns) == ["-x.py"]
    assert ns.no_ignored and not ns.module


@pytest.mark.parametrize(("words", "message"), [
    (["--steps"], "rngtrace compare: --steps needs a value"),
    (["--steps", "x", "t.py"], "rngtrace compare: --steps needs a number, not 'x'"),
    (["--level", "kernel", "t.py"], "rngtrace compare: --level is 'op' or 'module', not "
     "'kernel'"),
    (["--lr", "0.1", "t.py"], "rngtrace compare: unknown option '--lr' (the program's own "
     "options go after PROGRAM: rngtrace compare [OPTIONS] PROGRAM --lr ...; '--' before a "
     "program whose name starts with '-')"),
])
def test_read_options_errors(words, message):
    with pytest.raises(UsageError) as info:
        read_options("rngtrace compare", words, _ns())
    assert str(info.value) == message


def test_python_before_the_script_gets_the_command_to_write():
    def message(words, head=None):
        with pytest.raises(UsageError) as info:
            check_program("rngtrace run", words, False, head)
        return str(info.value)

    here = sys.executable
    assert message(["python", "train.py", "--lr", "1"]) == (
        f"rngtrace run: 'python' is not needed: rngtrace runs PROGRAM with its own Python "
        f"({here}); write: rngtrace run train.py --lr 1")
    assert message(["/usr/bin/python3.11", "-m", "pkg.train"],
                   ["rngtrace", "compare", "HEAD~1", "HEAD"]).endswith(
        "write: rngtrace compare HEAD~1 HEAD -m pkg.train")
    assert message(["python3", "-c", "print(1)"]) == (
        "rngtrace run: 'python3' is not needed: rngtrace runs a script or a module (-m) "
        f"with its own Python, {here}")
    assert message([]) == "rngtrace run: which program? (see 'rngtrace run --help')"
    # a module named python, or a script of another name, is no mistake
    assert check_program("rngtrace run", ["python"], True) == Program("python", (), True)
    assert check_program("rngtrace run", ["pythonic.py"], False).name == "pythonic.py"


def test_options_after_the_program_are_noted_with_the_command_to_write():
    program = Program("train.py", ("-o", "out.jsonl", "--lr", "0.1", "--run-on"))
    assert misplaced("rngtrace run", ["rngtrace", "run", "--steps", "3"], program,
                     RUN_OPTIONS) == (
        "rngtrace run: note: -o, --run-on after train.py go to train.py, not to rngtrace; "
        "rngtrace's options go before PROGRAM: rngtrace run --steps 3 -o out.jsonl --run-on "
        "train.py --lr 0.1")
    assert misplaced("rngtrace compare", ["rngtrace", "compare", "HEAD~1", "HEAD"],
                     Program("pkg.train", ("--steps=3",), True), SIDE_OPTIONS) == (
        "rngtrace compare: note: --steps after pkg.train goes to pkg.train, not to "
        "rngtrace; rngtrace's options go before PROGRAM: rngtrace compare HEAD~1 HEAD "
        "--steps=3 -m pkg.train")
    assert misplaced("rngtrace run", ["rngtrace", "run"], Program("t.py", ("--lr", "1")),
                     RUN_OPTIONS) is None


def test_run_hints_on_the_command_line(tmp_path, capsys, monkeypatch):
    """Through main: 'python' is refused before anything runs; an option after PROGRAM
    goes to the program, with a note; '-- -m' runs a module."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.py").write_text("import sys\nprint(sys.argv[1:])\n")
    assert main(["run", "python", "p.py"]) == ERROR
    err = capsys.readouterr().err
    assert err.startswith("rngtrace: error: rngtrace run: 'python' is not needed") and \
        err.rstrip().endswith("write: rngtrace run p.py")
    assert not (tmp_path / "p.rngtrace.jsonl").exists()
    assert main(["run", "p.py", "-o", "o.jsonl"]) == 0
    out, err = capsys.readouterr()
    assert out == "['-o', 'o.jsonl']\n"  # the program's, as python would pass them
    assert err.splitlines()[0] == (
        "rngtrace run: note: -o after p.py goes to p.py, not to rngtrace; rngtrace's "
        "options go before PROGRAM: rngtrace run -o o.jsonl p.py")
    # '--' says "the program starts here": no note
    assert main(["run", "--", "p.py", "-o", "o.jsonl"]) == 0
    assert "note" not in capsys.readouterr().err
    # (a package name of its own: another test's pkg may be imported in this process)
    (tmp_path / "hintpkg").mkdir()
    (tmp_path / "hintpkg" / "__init__.py").write_text("")
    (tmp_path / "hintpkg" / "hintjob.py").write_text("print(__name__)\n")
    assert main(["run", "--", "-m", "hintpkg.hintjob"]) == 0
    assert capsys.readouterr().out == "__main__\n"
    assert (tmp_path / "hintjob.rngtrace.jsonl").exists()
