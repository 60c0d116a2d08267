"""``make bench``: what recording costs, against the right references, in one process.

    python benchmarks/bench.py [--quick] [--device cpu|cuda] [--threads N]
                               [--only construct,step,...] [--json PATH] [--no-update]

Each comparison alternates its cases round by round and reports medians and ratios; the
table is printed, written to ``benchmarks/results.json`` and (full runs) into the README
and docs/benchmarks.md. ``--quick`` smoke-tests the harness at tiny sizes (its figures
mean nothing, and it writes no README). docs/benchmarks.md says what each line measures.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench_html  # noqa: E402
import harness  # noqa: E402
import load_memory  # noqa: E402
from harness import Row, alternate, median  # noqa: E402
from models import QUICK, EncoderConfig, EncoderTrainer, StepConfig, Trainer  # noqa: E402
from modes import BareMode, CompileBareMode, module_calls, param_count  # noqa: E402
from synthetic import synthetic  # noqa: E402

import rngtrace  # noqa: E402

BENCHES = ("construct", "step", "after", "diff", "logfile", "stable", "compiled", "html")
SMALL_STEP = StepConfig(vocab=256, seq=32, dim=64, layers=2, heads=4, batch=4)


class Bench:
    def __init__(self, quick: bool, device: str, clock: str = "auto") -> None:
        self.quick = quick
        self.device = device
        self.clock, self.now = harness.clock(device, clock)
        self.rows: list[Row] = []
        self.tmp = tempfile.mkdtemp(prefix="rngtrace-bench-")

    def say(self, text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    def add(self, *args: Any, raw: list[float] | None = None, **kwargs: Any) -> Row:
        """A row; ``raw`` (the samples) gives its count and quartiles in the JSON."""
        row = Row(*args, **kwargs)
        if raw:
            row.samples = len(raw)
            if len(raw) >= 4:
                q = statistics.quantiles(raw, n=4)
                row.extra.update(p25=q[0], p75=q[2])
        self.rows.append(row)
        return row

    def timed(self, fn: Callable[[], Any]) -> float:
        return harness.timed(fn, self.now)

    # -- 1. construction ---------------------------------------------------------------
    def construct(self) -> None:
        from bench_stable import GPT2Config, GPT2LMHead

        c = GPT2Config(vocab=100, positions=16, dim=16, layers=1, heads=2) if self.quick \
            else GPT2Config()
        dev = torch.device(self.device)

        def build() -> Any:
            with dev:
                return GPT2LMHead(c)

        def recorded() -> Any:
            with rngtrace.record() as log, dev:
                m = GPT2LMHead(c)
            return m, log

        n = sum(p.numel() for p in build().parameters())
        draws = len(recorded()[1].draws)  # also the warm-up of both
        s = alternate({"plain": lambda: [self.timed(build)],
                       "record()": lambda: [self.timed(recorded)]},
                      1 if self.quick else 7, self.say)
        bench = f"1. build GPT-2-small-sized model ({n / 1e6:.1f}M params, {draws} draws)"
        p = median(s["plain"])
        self.add(bench, "plain", p, "s", raw=s["plain"])
        r = median(s["record()"])
        self.add(bench, "record()", r, "s", r / p, "plain", "<= 1.03", raw=s["record()"])

    # -- 2. training step ----------------------------------------------------------------
    def _steps(self, tr: Trainer | EncoderTrainer, k: int) -> list[float]:
        out = []
        for _ in range(k):
            t = self.now()
            tr.step()
            out.append(self.now() - t)
        return out

    def step(self) -> None:
        self._step_bench("2a", "small transformer", QUICK if self.quick else SMALL_STEP,
                         full=True)
        if not self.quick:  # more work per module call: the light mode's realistic cost
            self._step_bench("2b", "medium transformer", StepConfig(), full=False)
        # a fast step (about 2-3 ms): fixed costs per draw and per module call show most
        enc = EncoderConfig(ff=32, batch=2, seq=4) if self.quick else EncoderConfig()
        self._step_bench("2c", "2-layer nn.TransformerEncoder, SGD", enc, full=True,
                         window=20)

    def _step_bench(self, label: str, what: str, cfg: StepConfig | EncoderConfig,
                    full: bool, window: int = 10) -> None:
        tr: Trainer | EncoderTrainer = EncoderTrainer(cfg, self.device) if isinstance(
            cfg, EncoderConfig) else Trainer(cfg, self.device)
        k, rounds = (1, 1) if self.quick else (window, 12 if full else 6)
        for _ in range(3):
            tr.step()
        calls = module_calls(tr.step)
        closes: dict[str, list[float]] = {}
        logs: dict[str, Any] = {}

        def window(name: str, make: Callable[[], Any], kk: int = k) -> Callable[[], list]:
            def run() -> list[float]:
                with make() as log:
                    tr.step()  # the first step of a window is not the steady state
                    out = self._steps(tr, kk)
                    t = self.now()
                closes.setdefault(name, []).append(self.now() - t)
                logs[name] = log
                return out
            return run

        from torch.utils._debug_mode import DebugMode

        path = os.path.join(self.tmp, "step.rngtrace.jsonl")
        cases = {
            "plain": lambda: self._steps(tr, k),
            "plain again": lambda: self._steps(tr, k),
            "bare TorchDispatchMode": window("bare", BareMode),
            "record()": window("record()", rngtrace.record),
            "record(path=...)": window("record(path=...)", lambda: rngtrace.record(path=path)),
            "record(level='module')": window("module", lambda: rngtrace.record(level="module")),
            "DebugMode": window("DebugMode", DebugMode, max(1, k // 2)),
        }
        if not full:
            for name in ("plain again", "record(path=...)", "DebugMode"):
                del cases[name]
        s = alternate(cases, rounds, self.say)
        per_step = len(logs["record()"].draws) / (k + 1)
        bench = (f"{label}. training step, {what} ({param_count(tr.model) / 1e3:.0f}k params, "
                 f"{calls} module calls, {per_step:g} draws per step)")
        target = "<= 1.10" if label == "2c" else "<= 1.15"  # record() against the bare mode
        self._step_rows(bench, s, calls, target)
        self._paired_rows(bench, tr, full, target)
        if full:
            self.add(bench, "record(): closing the window", median(closes["record()"]), "s",
                     note=f"after {k + 1} steps", raw=closes["record()"])

    def _step_rows(self, bench: str, s: dict[str, list[float]], calls: int,
                   target: str) -> None:
        """One row per case of a step benchmark, as a ratio to its reference."""
        med = {name: median(v) for name, v in s.items()}
        refs = {"plain again": ("plain", ""),
                "bare TorchDispatchMode": ("plain", ""),
                "record()": ("bare", target),
                "record(path=...)": ("bare", ""), "record(level='module')": ("plain", "<= 1.05"),
                "DebugMode": ("bare", "")}
        self.add(bench, "plain", med["plain"], "s", raw=s["plain"])
        for name, (ref, goal) in refs.items():
            if name not in med:
                continue
            base = med["plain"] if ref == "plain" else med["bare TorchDispatchMode"]
            note = "control: the noise floor" if name == "plain again" else ""
            if name == "record(level='module')":
                us = (med[name] - med["plain"]) / calls * 1e6
                note = f"{us:.1f} us per module call"
            self.add(bench, name, med[name], "s", med[name] / base, ref, goal, note=note,
                     raw=s[name])

    def _paired_rows(self, bench: str, tr: Trainer | EncoderTrainer, full: bool,
                     target: str) -> None:
        """The rows of steps paired within one window (see :meth:`_paired`)."""
        pairs = 3 if self.quick else (120 if full else 40)
        paused, resumed = self._paired(tr, pairs, "module")
        pm, rm = median(paused), median(resumed)
        self.add(bench, "record(level='module'), steps paired with paused ones", rm, "s",
                 rm / pm, "paused", "<= 1.05", note=f"paused: {pm * 1e3:.2f} ms",
                 raw=resumed)
        if full:
            paused, resumed = self._paired(tr, pairs, "op")
            pm, rm = median(paused), median(resumed)
            self.add(bench, "record(), steps paired with its mode passing through", rm, "s",
                     rm / pm, "inactive", target,
                     note=f"inactive: {pm * 1e3:.2f} ms", raw=resumed)

    def _paired(self, tr: Trainer | EncoderTrainer, pairs: int,
                level: str) -> tuple[list[float], list[float]]:
        """Steps in one window, recording paused and resumed in turn (the order swapped
        every pair): on a shared machine whose speed drifts from one run to the next,
        neighbouring steps see the same machine, which windows of 10 steps do not.
        ``level="module"``: the light mode, paused (its wrapper passes calls through);
        ``"op"``: ``record()``, its dispatch mode inactive (a bare pass-through mode)."""
        # what record(level=...) opens, the light mode with a pause (see pausing.py)
        from pausing import PausableModuleRecorder

        from rngtrace.recording.oplevel.recorder import Recorder

        def pause(on: bool) -> None:
            if isinstance(window, PausableModuleRecorder):
                window.set_paused(not on)
            else:
                window._mode.active = on

        paused: list[float] = []
        resumed: list[float] = []
        window = PausableModuleRecorder() if level == "module" else Recorder()
        with window:
            tr.step()
            for i in range(pairs):
                for on in (False, True) if i % 2 == 0 else (True, False):
                    pause(on)
                    t = self.now()
                    tr.step()
                    (resumed if on else paused).append(self.now() - t)
            pause(True)
        return paused, resumed

    # -- 3. after the window ------------------------------------------------------------
    def after(self) -> None:
        cfg = QUICK if self.quick else SMALL_STEP
        tr = Trainer(cfg, self.device)
        k, rounds = (1, 1) if self.quick else (20, 12)
        for _ in range(3):
            tr.step()

        def past(make: Callable[[], Any]) -> Callable[[], list[float]]:
            def run() -> list[float]:
                with make():
                    tr.step()
                    tr.step()  # the window closes at this optimizer step
                    return self._steps(tr, k)
            return run

        s = alternate({
            "plain": lambda: self._steps(tr, k),
            "plain again": lambda: self._steps(tr, k),
            "record(steps=2)": past(lambda: rngtrace.record(steps=2)),
            "record(level='module', steps=2)": past(
                lambda: rngtrace.record(level="module", steps=2)),
        }, rounds, self.say)
        bench = "3. training step after the window (steps 3+)"
        p = median(s["plain"])
        self.add(bench, "plain", p, "s", raw=s["plain"])
        self.add(bench, "plain again", median(s["plain again"]), "s",
                 median(s["plain again"]) / p, "plain", note="control: the noise floor",
                 raw=s["plain again"])
        for name in ("record(steps=2)", "record(level='module', steps=2)"):
            self.add(bench, name, median(s[name]), "s", median(s[name]) / p, "plain",
                     "<= 1.01", raw=s[name])

    # -- 4. diff -------------------------------------------------------------------------
    def diff(self) -> None:
        fn = getattr(rngtrace, "diff", None)
        bench = "4. diff, synthetic logs, 3 insertions"
        if not callable(fn):
            self.add(bench, "rngtrace.diff", None, "s", note="not available in this tree")
            return
        sizes = (100, 1_000) if self.quick else (10_000, 100_000, 1_000_000)
        prev: tuple[int, float] | None = None
        for n in sizes:
            a = synthetic(n)
            b = synthetic(n, insert=(n // 10, n // 2, 9 * n // 10))
            reps = 1 if self.quick or n >= 1_000_000 else 3
            t = median([self.timed(lambda a=a, b=b: fn(a, b)) for _ in range(reps)])
            growth = ""
            if prev is not None:
                growth = f"x{n / prev[0]:g} draws: x{t / prev[1]:.1f} time"
            self.add(bench, f"{n:,} draws", t, "s", note=growth, samples=reps)
            prev = (n, t)
            del a, b
            gc.collect()

    # -- 5. log files -------------------------------------------------------------------
    def logfile(self) -> None:
        bench = "5. log files: size, save, load"
        with rngtrace.record() as real:
            tr = Trainer(QUICK if self.quick else SMALL_STEP, self.device)
            for _ in range(2 if self.quick else 20):
                tr.step()
        with rngtrace.record(level="module") as light:
            for _ in range(2 if self.quick else 20):
                tr.step()
        n = 200 if self.quick else 100_000
        logs = (("recorded: small transformer, build + steps", real),
                ("recorded, level='module': steps", light),
                (f"synthetic, {n:,} draws", synthetic(n)))
        path = os.path.join(self.tmp, "log.rngtrace.jsonl")
        for label, log in logs:
            reps = 1 if self.quick or len(log.draws) < 1000 else 3
            save = median([self.timed(lambda log=log: rngtrace.save(log, path))
                           for _ in range(reps)])
            size = os.path.getsize(path)
            load = median([self.timed(lambda: rngtrace.load(path)) for _ in range(reps)])
            d = max(1, len(log.draws))
            self.add(bench, f"{label}: size", size / d, "B/draw",
                     note=f"{len(log.draws):,} draws, {size:,} B", samples=1)
            self.add(bench, f"{label}: save", d / save, "draws/s", samples=reps)
            self.add(bench, f"{label}: load", d / load, "draws/s", samples=reps)
        # load's peak memory against the file's size, in a fresh process
        big = 2_000 if self.quick else 600_000
        path = os.path.join(self.tmp, "big.rngtrace.jsonl")
        load_memory.write_synthetic(big, path)
        m = load_memory.measure(path)
        self.add(bench, f"synthetic, {big:,} draws: load, peak memory", m["peak"] / m["draws"],
                 "B/draw", note=f"{m['peak'] / m['size']:.2f} x the file: "
                 f"{m['peak'] / 1e6:.1f} MB for {m['size'] / 1e6:.1f} MB", samples=1)
        os.unlink(path)

    # -- 6. stable_init -------------------------------------------------------------------
    def stable(self) -> None:
        bench = "6. stable_init, GPT-2-small-sized model"
        try:
            from bench_stable import stable_rows
            rows = stable_rows(self.quick)
        except (ImportError, RuntimeError) as e:
            self.add(bench, "stable_init", None, "s", note=f"not available ({e})")
            return
        for what, seconds, ratio, n in rows:  # each ratio: against the plain row above it
            self.add(bench, what, seconds, "s", ratio, "plain" if ratio else "", samples=n,
                     note="" if seconds is not None else "not run with --quick")

    # -- 7. compiled training step (docs/compile.md) -------------------------------------
    def compiled(self) -> None:
        """A training step of the small transformer under torch.compile (Inductor), with
        and without record(). Each round compiles afresh (torch._dynamo.reset), the
        recorded one inside its window as a recorded run does (its graphs get seed maps,
        its draws are named); the compiling steps are not timed."""
        bench = "7. training step, small transformer, torch.compile (Inductor)"
        if self.quick:  # compiling takes a minute on 2 cores: not a smoke test's business
            self.say("compiled: not run with --quick")
            return
        import warnings

        tr = Trainer(SMALL_STEP, self.device)
        eager_model = tr.model
        k, rounds, warm = 10, 4, 3  # warm: compiling steps (forward, backward), not timed

        def run(record: bool, bare: bool = False) -> list[float]:
            torch._dynamo.reset()
            tr.model = torch.compile(eager_model)
            try:
                if not record:
                    with CompileBareMode() if bare else contextlib.nullcontext():
                        for _ in range(warm):
                            tr.step()
                        return self._steps(tr, k)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with rngtrace.record() as log:
                        for _ in range(warm):
                            tr.step()
                        out = self._steps(tr, k)
                named.append(sum(1 for d in log.draws if d.graph not in (None, "fx")))
                return out
            finally:
                tr.model = eager_model

        named: list[int] = []
        s = alternate({"plain compiled": lambda: run(False),
                       "bare TorchDispatchMode": lambda: run(False, bare=True),
                       "record()": lambda: run(True)}, rounds, self.say)
        p, b, r = (median(s[n]) for n in ("plain compiled", "bare TorchDispatchMode",
                                           "record()"))
        self.add(bench, "plain compiled", p, "s", raw=s["plain compiled"])
        self.add(bench, "bare TorchDispatchMode", b, "s", b / p, "plain",
                 note="ignore_compile_internals: compiles under it",
                 raw=s["bare TorchDispatchMode"])
        per_step = named[-1] / (warm + k) if named else 0
        self.add(bench, "record()", r, "s", r / p, "plain",
                 note=f"{r / b:.2f}x bare; {per_step:g} compiled-graph draws per step",
                 raw=s["record()"])

    def html(self) -> None:  # 8. (benchmarks/bench_html.py)
        bench_html.rows(self)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads "
                   "(default 1: stable ratios on a shared machine; 0: torch's default)")
    p.add_argument("--clock", choices=("auto", "wall", "cpu"), default="auto", help="cpu: "
                   "process CPU time; auto (default): cpu for one CPU thread, else wall")
    p.add_argument("--only", default=",".join(BENCHES),
                   help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument("--json", default=None,
                   help="where to write the results (default benchmarks/results.json; "
                        "none with --quick)")
    p.add_argument("--no-update", action="store_true",
                   help="do not write the table into README.md and docs/benchmarks.md")
    args = p.parse_args(argv)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(only) - set(BENCHES))
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench = Bench(args.quick, args.device, args.clock)
    info = harness.machine(args.device, bench.clock)
    print(f"rngtrace benchmarks{' (--quick: figures mean nothing)' if args.quick else ''}: "
          f"{harness.describe(info)}", flush=True)
    t0 = time.perf_counter()
    for name in BENCHES:
        if name in only:
            print(f"[{name}]", file=sys.stderr, flush=True)
            t = time.perf_counter()
            getattr(bench, name)()
            print(f"  {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    text = harness.table(bench.rows)
    print(text)
    print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
    result = {"machine": info, "quick": args.quick, "benchmarks": only,
              "rows": harness.to_json(bench.rows), "table": text}
    out = args.json or (None if args.quick else os.path.join(HERE, "results.json"))
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    if not args.quick and not args.no_update:
        region = f"Measured by `make bench` on {harness.describe(info)}.\n\n{text}\n"
        for doc in ("README.md", os.path.join("docs", "benchmarks.md")):
            if harness.update_region(os.path.join(ROOT, doc), region):
                print(f"table written into {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
