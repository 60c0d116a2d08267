"""The HTML page of a long synthetic log: how long it takes to build, and its size.

``python benchmarks/bench_html.py [N]`` builds the ``rngtrace show --html`` page of a
synthetic training log of N draws (default 1,000,000; benchmarks/synthetic.py) and the
page of its diff with a copy that has 3 draws inserted, and prints time and size. Used
by ``make bench`` (bench 8, :func:`rows`). The picture is left out (its cost is
Graphviz's, and depends on the modules, not on the draws).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def measure(n: int) -> dict[str, float]:
    """Build the show page of an ``n``-draw log and the diff page of two; returns the
    seconds and bytes of each."""
    from synthetic import synthetic

    import rngtrace

    a = synthetic(n)
    t = time.perf_counter()
    page = rngtrace.to_html(a, label="synthetic.rngtrace.jsonl", picture=False)
    show_s = time.perf_counter() - t
    show_b = len(page.encode("utf-8"))
    del page
    b = synthetic(n, insert=(n // 10, n // 2, 9 * n // 10))
    d = rngtrace.diff(a, b)
    t = time.perf_counter()
    page = rngtrace.to_html(d, picture=False)
    diff_s = time.perf_counter() - t
    return {"draws": n, "show_s": show_s, "show_bytes": show_b, "diff_s": diff_s,
            "diff_bytes": len(page.encode("utf-8"))}


def rows(bench: Any) -> None:
    """Bench 8 of ``make bench``: the rows of one size (1,000 draws with --quick)."""
    n = 1_000 if bench.quick else 1_000_000
    r = measure(n)
    name = f"8. HTML page, synthetic log of {n:,} draws (picture left out)"
    for page in ("show", "diff"):
        what = "rngtrace show --html" if page == "show" else "rngtrace diff --html, 3 inserted"
        bench.add(name, f"{what}: build", r[f"{page}_s"], "s", samples=1,
                  note="includes rngtrace.check's hazards" if page == "show" else "")
        bench.add(name, f"{what}: size", r[f"{page}_bytes"] / 1e6, "MB", samples=1,
                  note=f"{r[f'{page}_bytes'] / n:.1f} B/draw")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    r = measure(n)
    print(f"{n:,} draws: show page {r['show_bytes'] / 1e6:.1f} MB in {r['show_s']:.1f} s; "
          f"diff page {r['diff_bytes'] / 1e6:.1f} MB in {r['diff_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
