"""Peak memory of ``rngtrace.load`` against the file's size, in a fresh process.

``python benchmarks/load_memory.py [N]`` writes a synthetic op-level log of N draws
(default 600,000: about 70 MB) and loads it in a subprocess that reports its peak
resident set (``resource.getrusage``) before and after. Used by ``make bench`` (bench 5).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_CHILD = r"""
import gc, json, resource, sys, time
import rngtrace
def status(key):  # bytes, from /proc/self/status (Linux)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
def rss():  # peak resident set. Not getrusage's ru_maxrss: on Linux a child starts
    # with its parent's, which is big here (the parent wrote the log)
    if sys.platform.startswith("linux"):
        return status("VmHWM")
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024
def now():  # resident set now
    return status("VmRSS") if sys.platform.startswith("linux") else rss()
base = now()
t = time.perf_counter()
log = rngtrace.load(sys.argv[1])
t = time.perf_counter() - t
gc.collect()
print(json.dumps({"base": base, "peak": rss(), "held": now(), "draws": len(log.draws),
                  "seconds": t}))
"""


def measure(path: str) -> dict[str, float]:
    """Load ``path`` in a fresh Python; returns draws, file size, the peak and held
    memory above the interpreter's (bytes), and the load time."""
    out = subprocess.run([sys.executable, "-c", _CHILD, path], check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"draws": r["draws"], "size": os.path.getsize(path),
            "peak": r["peak"] - r["base"], "held": r["held"] - r["base"],
            "seconds": r["seconds"]}


def write_synthetic(n: int, path: str) -> None:
    from synthetic import synthetic

    import rngtrace

    rngtrace.save(synthetic(n), path)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600_000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.rngtrace.jsonl")
        write_synthetic(n, path)
        r = measure(path)
    mb = 1e6
    print(f"{r['draws']:,} draws, file {r['size'] / mb:.1f} MB: load peaks at "
          f"{r['peak'] / mb:.1f} MB above the interpreter ({r['peak'] / r['size']:.2f}x the "
          f"file, {r['peak'] / r['draws']:.0f} B/draw), holds {r['held'] / mb:.1f} MB; "
          f"{r['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
