"""How long one move of chapter 9's iteration slider takes: the redraw, not the EM run.

Usage: .venv/bin/python benchmarks/bench_redraw.py [--moves 40]

Builds the chapter's widget (`book/stepper.py`) outside a browser, then sets the iteration
slider's value as a reader's drag would, one half-step at a time, and times each change from the
assignment to the new PNG in the Image widget. "first visit" moves render a half-step the widget
has not shown before (artists updated in place, blitted over the cached background, encoded as
JPEG); "revisit" moves find the PNG in the widget's frame cache. The goal is a median under 50 ms.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book"))

import stepper  # noqa: E402


def time_moves(widget, positions):
    times = []
    for position in positions:
        before = widget.image.value
        start = time.perf_counter()
        widget.iteration.value = position
        times.append(time.perf_counter() - start)
        assert widget.image.value != before, "the image did not change"
    return times


def report(label, times):
    ms = [1000 * t for t in times]
    print(f"{label:<34} {len(ms):>4} moves   median {statistics.median(ms):6.1f} ms   "
          f"max {max(ms):6.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=40, help="moves per run (>= 20)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    runs = [("friendly", 3, 1, "painless"), ("faithful", 4, 0, "painless"),
            ("friendly", 5, 117, "naive")]
    for dataset, k, seed, impl in runs:
        start = time.perf_counter()
        widget = stepper.StepThrough(dataset, k, seed, impl)
        setup = time.perf_counter() - start
        last = widget.iteration.max
        positions = [1 + i % last for i in range(min(args.moves, last))]
        if len(positions) < 20:
            positions += positions[:20 - len(positions)]
        name = f"{dataset}, K={k}, seed {seed}, {impl}"
        print(f"{name}: {last + 1} half-steps; run + first frame {1000 * setup:.0f} ms")
        widget._frames.clear()
        first = positions[:len(set(positions))]
        report("  first visit (render)", time_moves(widget, first))
        again = [q for q in reversed(first) if q != widget.iteration.value]
        report("  revisit (frame cache)", time_moves(widget, again))


if __name__ == "__main__":
    main()
