"""Searching many keys in a large sorted array: numpy's ``searchsorted`` on the keys as they come
against ``recommender.ml.sorted_search.search_sorted`` (sorted first), in the same run.

    .venv/bin/python bench/sorted_search.py [--repeats 50]

Each case draws fresh random keys for every repeat (a request's keys differ from the last
request's, so the array's cache lines are not warm from an identical search), checks both give
the same positions, and prints the median time per call and the ratio. Array sizes: a neighbour
list union (12,000 columns), a 100k catalogue, a 1M catalogue; key counts: what a request
searches (a few hundred candidates to 20,000 look-alikes).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.ml.sorted_search import search_sorted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"{'array':>10} {'keys':>7} {'as they come':>14} {'sorted first':>14} {'ratio':>7}")
    for size in (12_000, 100_000, 1_000_000):
        array = np.unique(rng.integers(0, 10 * size, size=size))
        for n_keys in (300, 1_000, 5_000, 20_000):
            plain: list[float] = []
            sorted_first: list[float] = []
            for repeat in range(args.repeats):
                keys = rng.integers(0, 10 * size, size=n_keys)
                arms = [("plain", plain), ("sorted", sorted_first)]
                for name, times in arms if repeat % 2 else arms[::-1]:
                    started = time.perf_counter()
                    found = (
                        np.searchsorted(array, keys)
                        if name == "plain"
                        else search_sorted(array, keys)
                    )
                    times.append(time.perf_counter() - started)
                    if name == "sorted":
                        assert (found == np.searchsorted(array, keys)).all()
            a, b = statistics.median(plain) * 1e6, statistics.median(sorted_first) * 1e6
            print(f"{size:>10,} {n_keys:>7,} {a:>11.1f} us {b:>11.1f} us {b / a:>6.2f}x")


if __name__ == "__main__":
    main()
