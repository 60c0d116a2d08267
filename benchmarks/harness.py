"""Timing helpers for ``bench.py``: alternation, medians, the machine, the table.

Every comparison runs its cases in turn, round after round (A B C, C B A, A B C ...),
in one process, so that all cases see the same machine load, thermal state and
allocator; a case returns the samples of one round (seconds). Medians, not means: a shared machine
has long-tailed pauses.
"""

from __future__ import annotations

import datetime
import gc
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def clock(device: str, kind: str = "auto") -> tuple[str, Callable[[], float]]:
    """The clock the benchmarks read, and its name.

    ``"wall"``: ``time.perf_counter`` (after waiting for a GPU's queued work).
    ``"cpu"``: ``time.process_time``, the CPU time of this process; on a CPU run with one
    torch thread it equals the wall time of an idle machine, and it does not count the
    time other programs hold the cores, so a shared machine gives stable ratios.
    ``"auto"``: ``"cpu"`` for a CPU run with one torch thread, else ``"wall"``.
    """
    if kind == "auto":
        kind = "cpu" if device == "cpu" and torch.get_num_threads() == 1 else "wall"
    if kind == "cpu":
        return "cpu (process_time)", time.process_time
    if device.startswith("cuda"):
        def tick() -> float:
            torch.cuda.synchronize()
            return time.perf_counter()
        return "wall (perf_counter, CUDA synchronised)", tick
    return "wall (perf_counter)", time.perf_counter


def alternate(cases: dict[str, Callable[[], list[float]]], rounds: int,
              progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run each case once per round, in the order given and reversed every other round
    (A B C, C B A, A B C ...: no case always runs after the same one, e.g. after a
    window closes); all samples per case."""
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(rounds):
        for name in list(cases) if r % 2 == 0 else reversed(list(cases)):
            samples[name].extend(cases[name]())
        if progress is not None:
            progress(f"round {r + 1}/{rounds}")
    return samples


def timed(fn: Callable[[], Any], now: Callable[[], float]) -> float:
    """Seconds ``fn()`` takes on the clock ``now``; garbage collected before and after,
    and its result dropped inside the timed region, so that neither run pays for the
    other's garbage."""
    gc.collect()
    t = now()
    out = fn()
    elapsed = now() - t
    del out
    gc.collect()
    return elapsed


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def machine(device: str, clock_name: str) -> dict[str, Any]:
    """Where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
            if m:
                cpu = m.group(1).strip()
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "clock": clock_name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def describe(m: dict[str, Any]) -> str:
    where = f"{m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch thread" + (
        "s" if m["torch_threads"] != 1 else "")
    if "gpu" in m:
        where = f"{m['gpu']} ({where})"
    return (f"{where}; torch {m['torch']}, Python {m['python']}, device {m['device']}, "
            f"clock {m['clock']}, {m['date'][:10]}")


@dataclass
class Row:
    """One line of the table: a measured value, and its ratio to a reference."""

    bench: str
    case: str
    value: float | None
    unit: str  # "s", "ms", "B/draw", "draws/s", ...
    ratio: float | None = None
    ref: str = ""  # what the ratio is against
    target: str = ""  # e.g. "<= 1.15"
    note: str = ""
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def verdict(self) -> str:
        m = re.fullmatch(r"<=\s*([0-9.]+)", self.target)
        if m is None or self.ratio is None:
            return ""
        return "yes" if self.ratio <= float(m.group(1)) else "NO"


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s"
    if unit in ("B/draw", "draws/s", "B"):
        return f"{v:,.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}"
    return f"{v:.3g} {unit}"


def table(rows: list[Row]) -> str:
    """A Markdown table (it goes into the README as it is printed)."""
    head = ("benchmark", "case", "median", "ratio", "target", "met", "n")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last = None
    for r in rows:
        ratio = f"{r.ratio:.3f}x {r.ref}" if r.ratio is not None else ""
        case = r.case + (f" ({r.note})" if r.note else "")
        cells = (r.bench if r.bench != last else "", case, fmt_value(r.value, r.unit), ratio,
                 r.target.replace("<=", "≤"), r.verdict(), str(r.samples or ""))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        last = r.bench
    return "\n".join(lines)


def to_json(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        d = asdict(r)
        d["met"] = r.verdict() or None
        out.append(d)
    return out


def update_region(path: str, text: str) -> bool:
    """Replace what lies between the bench markers in ``path``; False if they are absent."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = f.read()
    except OSError:
        return False
    i, j = doc.find(START), doc.find(END)
    if i < 0 or j < i:
        return False
    new = doc[:i + len(START)] + "\n" + text.rstrip("\n") + "\n" + doc[j:]
    if new != doc:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return True
