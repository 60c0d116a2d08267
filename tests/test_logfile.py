"""Log files: round trips, streaming with record(path=...), and every kind of bad file."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings

import pytest
import torch

import rngtrace
from helpers import make_draw
from rngtrace import Event, GeneratorInfo, Log, LogFormatError
from rngtrace.logfile import FORMAT_VERSION, MAX_LINE, save

_draw = make_draw


def _log() -> Log:
    draws = [
        _draw(0),
        _draw(1, target="enc.bias", shape=(4,), numel=4),
        _draw(2, op="aten::bernoulli_.float", module="drop", module_type="Dropout",
              target=None, phase="forward", step=1, shape=(2, 4), numel=8, args={"p": 0.9},
              site="model.py:9", code="x = self.drop(x)", api="torch.nn.functional.dropout"),
        _draw(3, op="aten::randperm", module=None, module_type=None, target=None,
              phase="other", step=1, shape=(8,), dtype="int64", numel=8, args={"n": 8},
              generator="generator:1", state_before="aa", state_after="bb", model=None,
              site=None, code=None, api=None),
        _draw(4, module="", module_type="Net", target=None, consumed=False,
              state_before="05", state_after="05", discarded=True, shape=(), numel=0,
              dtype="", device="meta"),
    ]
    return Log(
        draws=draws,
        events=[Event("reseed", "default:cpu", 2, "train.py:5", "torch.manual_seed(1)"),
                Event("gap", "default:cpu", 5)],
        generators={"default:cpu": GeneratorInfo("default:cpu", "cpu", 0, "00"),
                    "generator:1": GeneratorInfo("generator:1", "cpu", 2**64 - 1, "aa")},
        meta={"tool": "rngtrace", "argv": ["train.py", "--x"], "time": "2026-01-01"},
        complete=True, steps=2, level="op",
        called=[("Net", ""), ("Net", "enc"), (None, "x")],
        with_grad=[("Net", "enc.weight")],
    )


def test_round_trip_equal(tmp_path):
    log = _log()
    path = tmp_path / "a.rngtrace.jsonl"
    log.save(path)
    back = rngtrace.load(path)
    assert back == log  # draws, events, generators, meta, complete, steps, called...
    assert back.draws == log.draws and back.events == log.events


def test_round_trip_none_usage_and_incomplete_flag(tmp_path):
    log = _log()
    log.called, log.with_grad, log.complete = None, None, False
    save(log, tmp_path / "a.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete file: no warning, even if complete=False
        back = rngtrace.load(tmp_path / "a.jsonl")
    assert back == log


def test_record_streams_to_file(tmp_path):
    path = tmp_path / "lin.rngtrace.jsonl"
    torch.manual_seed(5)  # so that both windows see the same reseed event
    with rngtrace.record() as mem:
        torch.manual_seed(0)
        torch.nn.Linear(4, 2)
    torch.manual_seed(5)
    with rngtrace.record(path=path) as log:
        torch.manual_seed(0)
        torch.nn.Linear(4, 2)
    # the window's log keeps no draws; the file has them: weight + bias = 2 draws
    assert log.draws == [] and log.file.written == 2
    assert log.file == rngtrace.FileInfo(str(path), 2, None)
    back = rngtrace.load(path)
    assert [(d.op, d.target) for d in back.draws] == [("aten::uniform_", "weight"),
                                                     ("aten::uniform_", "bias")]
    # equal to the in-memory window's draws but for the line they were made on
    assert [dataclasses.replace(d, site=None) for d in back.draws] == [
        dataclasses.replace(d, site=None) for d in mem.draws]
    strip = lambda e: dataclasses.replace(e, site=None)  # noqa: E731
    assert [strip(e) for e in back.events] == [strip(e) for e in mem.events]
    assert [e.kind for e in back.events] == ["reseed"]
    assert back.generators == mem.generators


def _write(tmp_path, data: bytes | str, name: str = "bad.jsonl"):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _good_lines(tmp_path) -> list[str]:
    _log().save(tmp_path / "good.jsonl")
    return (tmp_path / "good.jsonl").read_text().splitlines(keepends=True)


def _fails(path, *words: str, line: int | None = None) -> LogFormatError:
    with pytest.raises(LogFormatError) as info:
        rngtrace.load(path)
    e = info.value
    assert str(path) in str(e)
    assert e.line == line
    for w in words:
        assert w in str(e), (w, str(e))
    return e


# -- bad files: each kind raises LogFormatError naming the file and line --------------

def test_missing_file(tmp_path):
    _fails(tmp_path / "nope.jsonl", "no such file")


def test_directory(tmp_path):
    _fails(tmp_path, "directory")


def test_empty_file(tmp_path):
    _fails(_write(tmp_path, ""), "empty file")


def test_not_json(tmp_path):
    _fails(_write(tmp_path, "hello, world\n"), "not JSON", line=1)


def test_bad_line_in_the_middle_is_an_error_not_a_cut(tmp_path):
    lines = _good_lines(tmp_path)
    lines[2] = lines[2][:20] + "\n"  # a cut line followed by more lines: corruption
    _fails(_write(tmp_path, "".join(lines)), "not JSON", line=3)


def test_another_tools_json(tmp_path):
    _fails(_write(tmp_path, '{"format": "chrome-trace", "version": 1}\n'),
           "not an rngtrace log", "'rngtrace_log'", line=1)
    _fails(_write(tmp_path, "[1, 2, 3]\n"), "must be a JSON object", line=1)


def test_newer_format(tmp_path):
    lines = _good_lines(tmp_path)
    lines[0] = lines[0].replace('"rngtrace_log":1', '"rngtrace_log":9')
    e = _fails(_write(tmp_path, "".join(lines)), line=1)
    assert e.reason == f"format 9 is newer than this rngtrace ({FORMAT_VERSION}); " \
                       "upgrade rngtrace to read it"


def test_bad_version_values(tmp_path):
    for v in ("0", '"1"', "true", "1.0"):
        _fails(_write(tmp_path, f'{{"rngtrace_log":{v}}}\n'), "unknown format version",
               line=1)


@pytest.mark.parametrize(("key", "value", "words"), [
    ("i", '"0"', ["'i'", "non-negative integer"]),
    ("sh", '[4, -3]', ["'sh'", "list of non-negative integers"]),
    ("sh", '"4x3"', ["'sh'"]),
    ("o", "17", ["'o'", "a string"]),
    ("c", "1", ["'c'", "true or false"]),
    ("a", '{"p": [1]}', ["'a'", "numbers and strings"]),
    ("m", "{}", ["'m'", "string or null"]),
])
def test_field_of_the_wrong_type(tmp_path, key, value, words):
    lines = _good_lines(tmp_path)
    rec = json.loads(lines[1])
    assert rec["t"] == "d"
    rec[key] = json.loads(value)
    lines[1] = json.dumps(rec) + "\n"
    _fails(_write(tmp_path, "".join(lines)), "draw field", *words, line=2)


def test_missing_required_field_and_bad_order(tmp_path):
    lines = _good_lines(tmp_path)
    rec = json.loads(lines[1])
    del rec["o"]
    _fails(_write(tmp_path, "".join([lines[0], json.dumps(rec) + "\n"])),
           "draw record has no 'o' field", line=2)
    # line 2 is draw 0; dropping it makes draw 1 come first
    _fails(_write(tmp_path, "".join([lines[0], *lines[2:]])), "draw 1 out of order",
           line=2)


def test_header_fields_of_the_wrong_type(tmp_path):
    _fails(_write(tmp_path, '{"rngtrace_log":1,"meta":[]}\n'), "'meta'", line=1)
    _fails(_write(tmp_path, '{"rngtrace_log":1,"gens":{"g":{"dv":3}}}\n'), "'dv'", line=1)


def test_words_outside_the_vocabulary_are_refused(tmp_path):
    """Phase, event kind and level take only their words (a phase once went unescaped
    into a picture's labels): one line naming the file, the line and the words."""
    lines = _good_lines(tmp_path)
    draw = json.loads(lines[1])
    draw["ph"] = "<b>init</b>"
    _fails(_write(tmp_path, "".join([lines[0], json.dumps(draw) + "\n", *lines[2:]])),
           "draw field 'ph' is \"<b>init</b>\", expected one of \"init\", \"forward\", "
           "\"backward\", \"other\"", line=2)
    k = next(i for i, x in enumerate(lines) if '"t":"e"' in x)
    event = json.loads(lines[k])
    event["k"] = "reseeded"
    _fails(_write(tmp_path, "".join([*lines[:k], json.dumps(event) + "\n", *lines[k + 1:]])),
           "event field 'k' is \"reseeded\", expected one of \"reseed\"", line=k + 1)
    _fails(_write(tmp_path, '{"rngtrace_log":1,"level":"kernel"}\n'),
           "header field 'level' is \"kernel\", expected one of \"op\", \"module\"", line=1)


def test_a_windows_file_info_is_not_written(tmp_path):
    """``Log.file`` says where a window streamed to; no file holds it (format unchanged)."""
    path, copy = tmp_path / "run.rngtrace.jsonl", tmp_path / "copy.rngtrace.jsonl"
    with rngtrace.record(path=path) as log:
        torch.rand(2)
    rngtrace.save(log, copy)
    for p in (path, copy):
        head = json.loads(p.read_text().splitlines()[0])
        assert not {"path", "draws", "write_error"} & set(head["meta"]), p
        assert rngtrace.load(p).file is None


def test_end_record_counts_must_match(tmp_path):
    lines = [x for x in _good_lines(tmp_path) if '"t":"u","k":"with_grad"' not in x]
    _fails(_write(tmp_path, "".join(lines)), "counts 1 with_grad entries, the file has 0",
           line=len(lines))


def test_record_after_end(tmp_path):
    lines = _good_lines(tmp_path)
    _fails(_write(tmp_path, "".join([*lines, lines[1]])), "after the end record",
           line=len(lines) + 1)


def test_huge_line(tmp_path):
    lines = _good_lines(tmp_path)
    huge = '{"t":"x","pad":"' + "a" * MAX_LINE + '"}\n'
    _fails(_write(tmp_path, "".join([*lines[:2], huge, *lines[2:]])), "longer than",
           line=3)
    _fails(_write(tmp_path, "{" * (MAX_LINE + 10)), "longer than", line=1)


def test_deep_nesting_and_huge_integers(tmp_path):
    lines = _good_lines(tmp_path)
    _fails(_write(tmp_path, "".join([*lines[:1], "[" * 100000 + "]" * 100000 + "\n"])),
           "not JSON", line=2)
    _fails(_write(tmp_path, "".join([*lines[:1], '{"t":"d","i":' + "9" * 5000 + "}\n"])),
           "not JSON", line=2)


def test_binary_junk(tmp_path):
    _fails(_write(tmp_path, bytes(range(256)) * 4), line=1)
    _fails(_write(tmp_path, b"\xff\xfe{\x00\n"), "binary data", line=1)


def test_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    _fails(_write(tmp_path, pickle.dumps(Evil())), "a pickle", line=1)
    _fails(_write(tmp_path, pickle.dumps({"a": 1}, protocol=0)), "not JSON", line=1)
    assert not marker.exists()


def test_torch_save_file(tmp_path):
    p = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, p)
    _fails(p, "zip archive", line=1)


def test_unknown_fields_and_kinds_are_tolerated(tmp_path):
    lines = _good_lines(tmp_path)
    rec = json.loads(lines[1])
    rec["future"] = {"anything": [1, 2]}
    lines[1] = json.dumps(rec) + "\n"
    lines.insert(2, '{"t":"future-kind","x":1}\n')
    lines.insert(3, "\n")  # blank lines are skipped
    assert rngtrace.load(_write(tmp_path, "".join(lines))) == _log()


# -- logs cut short --------------------------------------------------------------------

def test_cut_last_line_loads_incomplete_with_a_warning(tmp_path):
    lines = _good_lines(tmp_path)
    # header, 2 events, 5 draws, 3 usage, end = 12 lines; keep header..draw 2, cut draw 3
    text = "".join(lines[:5]) + lines[5][:30]
    assert json.loads(lines[5])["i"] == 3
    with pytest.warns(RuntimeWarning, match=r"bad\.jsonl:6: the last line is cut short"):
        log = rngtrace.load(_write(tmp_path, text))
    assert not log.complete
    assert [d.index for d in log.draws] == [0, 1, 2]
    assert [e.kind for e in log.events] == ["reseed"]
    assert log.steps == 1  # the step of the last draw read
    assert log.called is None and log.with_grad is None
    # the header has the generators known at the start; draws name the others
    assert set(log.generators) == {"default:cpu", "generator:1"}


def test_no_end_record_loads_incomplete_with_a_warning(tmp_path):
    lines = _good_lines(tmp_path)
    with pytest.warns(RuntimeWarning, match="no end record after line 3"):
        log = rngtrace.load(_write(tmp_path, "".join(lines[:3])))
    assert not log.complete and len(log.draws) == 2  # line 2 is draw 0, line 3 draw 1


def test_cut_header_is_an_error(tmp_path):
    lines = _good_lines(tmp_path)
    _fails(_write(tmp_path, lines[0][:25]), "not JSON", line=1)


def test_last_line_without_newline_but_whole_is_fine(tmp_path):
    text = "".join(_good_lines(tmp_path)).rstrip("\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rngtrace.load(_write(tmp_path, text)) == _log()


# -- streaming: a killed recording, flat memory ---------------------------------------

@pytest.mark.slow
def test_killed_recording_leaves_a_log_that_loads(tmp_path):
    path = tmp_path / "killed.rngtrace.jsonl"
    code = (
        "import torch, rngtrace\n"
        "torch.manual_seed(1234)\n"
        f"with rngtrace.record(path={str(path)!r}):\n"
        "    while True:\n"
        "        torch.rand(3)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (path.exists() and path.read_bytes().count(b"\n") > 50):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no draws written in 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with pytest.warns(RuntimeWarning, match="killed or crashed"):
        log = rngtrace.load(path)
    assert not log.complete
    assert len(log.draws) >= 50  # more than 50 lines: the header and at least 50 draws
    assert {(d.op, d.shape, d.generator) for d in log.draws} == {
        ("aten::rand", (3,), "default:cpu")}
    # the generator's states chain from draw to draw: nothing was lost in between
    for a, b in itertools.pairwise(log.draws):
        assert a.state_after == b.state_before
    assert log.generators["default:cpu"].initial_seed == 1234  # from the header


def test_file_window_memory_stays_flat(tmp_path):
    with rngtrace.record(path=tmp_path / "warm.jsonl"):
        torch.rand(1)  # first-use costs (imports, caches) outside the measure
    tracemalloc.start()
    try:
        with rngtrace.record(path=tmp_path / "flat.jsonl") as log:
            for _ in range(2000):
                torch.rand(1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert log.file.written == 2000 and log.draws == []
    # kept in memory, 2000 draws take about 1.2 MB (about 590 bytes each, measured);
    # streamed, the peak is that of one draw in flight (about 40 KB measured)
    assert peak < 200_000, peak


def test_a_draw_that_cannot_be_encoded_leaves_the_stream_consistent(tmp_path):
    from rngtrace.logfile import FileSink

    path = tmp_path / "s.jsonl"
    sink = FileSink(path)
    log = _log()
    sink.start(log, log.generators)
    sink.draw(log.draws[0])
    with pytest.raises(TypeError):  # the recorder turns this into an "error" event
        # draw 1's fields but for an argument JSON cannot hold
        sink.draw(dataclasses.replace(log.draws[1], args={"x": object()}))
    for d in log.draws[1:]:
        sink.draw(d)  # encoded against draw 0, as if the failed one never happened
    for e in log.events:
        sink.event(e)
    sink.finish(log, {})
    back = rngtrace.load(path)
    assert back.draws == log.draws and back.events == log.events


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_device_is_refused_as_a_log_to_write():
    # it used to be accepted, fail at each write and still say complete=True
    with pytest.raises(rngtrace.RecordError, match=r"/dev/full: .*not a regular file"):
        rngtrace.record(path="/dev/full")


class _RandomItems(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.rand(2)  # drawn in a worker process


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_dataloader_workers_do_not_write_into_the_file(tmp_path):
    path = tmp_path / "workers.jsonl"
    loader = torch.utils.data.DataLoader(_RandomItems(), batch_size=2, num_workers=2,
                                         multiprocessing_context="fork")
    with rngtrace.record(path=path) as log:
        batches = list(loader)
    assert len(batches) == 2
    back = rngtrace.load(path)  # the workers inherit the mode and the file, yet write nothing
    # the parent drew once: random_ for the workers' base seed; the workers' 4 rand calls
    # happen in other processes, on their own copies of the generator, and reach the file
    # through their parts, written by the parent when the window closes (recording.streams.workers)
    assert [(d.op, d.worker) for d in back.draws] == [
        ("aten::random_", None), ("aten::rand", 0), ("aten::rand", 0), ("aten::rand", 1),
        ("aten::rand", 1)]
    assert log.file.written == 5
    assert back.complete and back.events == []


# -- the user's files: nothing truncated before the window, no foreign file replaced ----

def _a_log_file(path) -> bytes:
    _log().save(path)
    return path.read_bytes()


def test_a_refused_nested_window_leaves_the_file_whole(tmp_path):
    path = tmp_path / "run.rngtrace.jsonl"
    before = _a_log_file(path)
    with rngtrace.record():
        inner = rngtrace.record(path=path)  # accepted: the path is an rngtrace log
        assert path.read_bytes() == before  # record() itself writes nothing
        with pytest.raises(rngtrace.RecordError, match="nested"), inner:
            pass
    assert path.read_bytes() == before


def test_a_window_that_never_opens_leaves_the_file_whole(tmp_path):
    path = tmp_path / "run.rngtrace.jsonl"
    before = _a_log_file(path)
    rngtrace.record(path=path)  # made, never entered
    assert path.read_bytes() == before


@pytest.mark.parametrize("name, text", [
    ("train.py", "import torch\nprint(torch.rand(1))\n"),
    ("notes.jsonl", '{"step": 1, "loss": 0.5}\n'),
    ("model.pt", "\x80\x04\x95 pickled"),
])
def test_record_never_writes_over_a_file_that_is_not_a_log(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(rngtrace.RecordError, match="not an rngtrace log"):
        rngtrace.record(path=path)
    assert path.read_text() == text


def test_save_never_writes_over_a_file_that_is_not_a_log(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("print(1)\n")
    with pytest.raises(rngtrace.RngtraceError, match="not an rngtrace log"):
        save(_log(), path)
    assert path.read_text() == "print(1)\n" and os.listdir(tmp_path) == ["train.py"]


def test_an_empty_file_or_an_older_log_may_be_replaced(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    old = tmp_path / "old.jsonl"
    _a_log_file(old)
    for path in (empty, old):
        with rngtrace.record(path=path):
            torch.rand(2)
        assert [d.op for d in rngtrace.load(path).draws] == ["aten::rand"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_files_are_refused_as_logs_to_write(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):  # a FIFO would block at open(); a directory
        with pytest.raises(rngtrace.RecordError, match=r"not a regular file|directory"):
            rngtrace.record(path=path)
        with pytest.raises(rngtrace.RngtraceError, match=r"not a regular file|directory"):
            save(_log(), path)


def test_a_failed_write_marks_the_window_incomplete(tmp_path, monkeypatch):
    from rngtrace.logfile import FileSink

    path = tmp_path / "full.jsonl"
    sink = FileSink(path)
    log = _log()
    sink.start(log, log.generators)
    sink.draw(log.draws[0])

    def full(data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sink._f, "write", full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        sink.draw(log.draws[1])  # the program goes on
    sink.finish(log, {})
    # one draw reached the file; the window says it is not whole, and why
    assert not log.complete and "No space left" in log.file.error


_HOLD = (
    "import sys, time, os, torch, rngtrace, warnings\n"
    "warnings.simplefilter('always')\n"
    "path, go, n = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
    "with rngtrace.record(path=path) as log:\n"
    "    for _ in range(n):\n"
    "        torch.rand(1)\n"
    "    open(go + '.' + str(os.getpid()), 'w').close()\n"
    "    while not os.path.exists(go):\n"
    "        time.sleep(0.01)\n"
    "print(log.file.path)\n"
)


@pytest.mark.slow
def test_two_processes_streaming_to_one_path_keep_both_logs(tmp_path):
    path, go = tmp_path / "run.rngtrace.jsonl", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _HOLD, str(path), str(go), str(n)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (3, 5)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*"))) < 2:  # both windows open at once
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline, "the windows did not open in 120 s"
        time.sleep(0.02)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = [out.strip() for out, _ in outs]
    assert len(set(paths)) == 2 and str(path) in paths  # one of them under another name
    moved = next(p for p in paths if p != str(path))
    assert "another process" in "".join(err for _, err in outs)
    assert os.path.dirname(moved) == str(tmp_path)
    # each file holds one process's whole log: 3 draws and 5 draws
    assert sorted(len(rngtrace.load(p).draws) for p in paths) == [3, 5]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)  # open() for reading would wait for a writer forever
    _fails(fifo, "FIFO", "not a regular file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused():
    with pytest.raises(LogFormatError, match=r"/dev/zero: .*not a regular file"):
        rngtrace.load("/dev/zero")  # endless input


# -- hostile input: bounded, and nothing that loads breaks a printer later ------------

def _with_draw_field(tmp_path, key: str, raw_value: str, name: str = "hostile.jsonl"):
    lines = _good_lines(tmp_path)
    rec = json.loads(lines[1])
    assert rec["t"] == "d"
    lines[1] = json.dumps(rec)[:-1] + f', "{key}": {raw_value}}}\n'
    return _write(tmp_path, "".join(lines), name)


@pytest.mark.parametrize("key", ["m", "o", "s", "cd"])
def test_a_lone_surrogate_is_refused_with_its_line(tmp_path, key):
    # "\ud800" is valid JSON but no Unicode text: printing it raised UnicodeEncodeError
    _fails(_with_draw_field(tmp_path, key, '"enc\\ud800"'), "surrogate", line=2)


def test_a_lone_surrogate_anywhere_in_the_header_is_refused(tmp_path):
    lines = _good_lines(tmp_path)
    head = json.loads(lines[0])
    head["meta"]["argv"] = ["train.py", {"deep": ["x\udfff"]}]
    lines[0] = json.dumps(head) + "\n"
    _fails(_write(tmp_path, "".join(lines)), "surrogate", line=1)


def test_a_surrogate_pair_is_text_and_loads(tmp_path):
    path = _with_draw_field(tmp_path, "cd", '"x = 1  # \\ud83d\\ude00"')
    assert rngtrace.load(path).draws[0].code == "x = 1  # \U0001f600"


def test_a_module_path_too_deep_is_refused(tmp_path):
    from rngtrace.logfile.format import MAX_DEPTH

    deep = ".".join(["a"] * 100_000)  # gave RecursionError in dot, quadratic prefixes
    _fails(_with_draw_field(tmp_path, "m", json.dumps(deep)), "module path", "deeper",
           line=2)
    ok = ".".join(["a"] * MAX_DEPTH)
    assert rngtrace.load(_with_draw_field(tmp_path, "m", json.dumps(ok), "ok.jsonl")
                         ).draws[0].module == ok
    lines = _good_lines(tmp_path)
    usage = next(i for i, line in enumerate(lines) if '"t":"u"' in line)
    rec = json.loads(lines[usage])
    rec["p"] = [deep]
    lines[usage] = json.dumps(rec) + "\n"
    _fails(_write(tmp_path, "".join(lines), "u.jsonl"), "deeper", line=usage + 1)


def test_endless_valid_input_stops_at_the_record_limit(tmp_path, monkeypatch):
    import rngtrace.logfile.read as read

    monkeypatch.setattr(read, "MAX_RECORDS", 4)
    lines = _good_lines(tmp_path)  # header + 2 events + 5 draws + ...: more than 4
    _fails(_write(tmp_path, "".join(lines)), "more than 4 records", line=5)


def test_a_loaded_log_is_compact(tmp_path):
    n = 5000
    draws = [_draw(i, shape=(400, 300), numel=120_000, site=f"model.py:{i % 7}")
             for i in range(n)]
    path = tmp_path / "big.jsonl"
    save(Log(draws=draws, generators=_log().generators), path)
    tracemalloc.start()
    try:
        back = rngtrace.load(path)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert back.draws == draws
    first = back.draws[0]
    # equal values are one object: args dicts, element counts (ints above 256 are
    # not cached by Python), shapes and strings
    assert all(d.args is first.args and d.numel is first.numel and d.shape is first.shape
               and d.code is first.code for d in back.draws)
    assert first.args is not rngtrace.load(path).draws[0].args  # but not across loads
    # per draw: the Draw (208 B), its state string (65 B), its index (28 B), a list slot;
    # each draw had its own args dict (184 B) and count (32 B): 533 B/draw measured,
    # 317 now
    assert held / n < 400, held / n
