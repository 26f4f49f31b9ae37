"""Where a fit's memory goes: peak RSS of the engine fit, and of the tuning sample's fit.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_1m \
        RECSITE_VAR_DIR=/work/bench-data/var-scale-1m RECSITE_EMBEDDER=hashing \
        RECSITE_HASHING_DIMENSION=384 \
        flock /tmp/recsite-heavy.lock nice -n 5 .venv/bin/python bench/fit_memory.py [--fit-only] \
            [--after-autotune]

Runs what the train job runs (``engine_build``, then ``tuning_sample`` unless ``--fit-only``) on
a prepared database (``bench/scale.py --keep-db`` leaves one per size), in this process, while a
thread samples the resident memory every 0.2 s with the innermost frames of the main thread.
Prints the fit's own figures (``EngineBuild.memory``: the plan's estimate by part and the
measured peak), the process's peak, and the sampled places where memory was highest: that is
where a change lowers the peak. The fit publishes a new engine build, as ``manage.py train``
does.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings.base")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Frames of these files name a phase of the fit (the project's code and the libraries it calls).
_PHASE_FILES = (str(REPO), "site-packages/implicit", "site-packages/scipy", "site-packages/numpy")


class Sampler(threading.Thread):
    """The highest resident memory seen in each place of the main thread (innermost 3 frames)."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.main = threading.get_ident()
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self.running = True

    def run(self) -> None:
        while self.running:
            rss, place = _status_mib("VmRSS"), self._place()
            if rss > self.peaks.get(place, 0):
                self.peaks[place] = rss
            time.sleep(self.interval)

    def _place(self) -> str:
        frame = sys._current_frames().get(self.main)
        stack = [
            f"{Path(f.filename).name}:{f.name}:{f.lineno}"
            for f in traceback.extract_stack(frame)
            if any(part in f.filename for part in _PHASE_FILES)
        ]
        return " < ".join(reversed(stack[-3:]))


def _status_mib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fit-only", action="store_true", help="Skip the tuning sample.")
    parser.add_argument(
        "--after-autotune",
        action="store_true",
        help="Run the automatic tuning first, in this process, as the train job does, and print "
        "the memory the fit starts with and what each release of serving builds hands back.",
    )
    parser.add_argument("--places", type=int, default=15, help="Sampled places to print.")
    args = parser.parse_args()

    import django

    django.setup()
    from recommender.services.recommendations import engine_build, serving_engine_recheck
    from recommender.services.tuning import tuning_sample

    sampler = Sampler()
    sampler.start()
    if args.after_autotune:
        from recommender.services.autotune import config_autotune
        from recommender.services.recommendations import fitting

        started = time.perf_counter()
        config_autotune()
        print(f"automatic tuning: {time.perf_counter() - started:.0f} s; the fit starts with "
              f"{_status_mib('VmRSS')} MiB resident")  # fmt: skip
        release = fitting.serving_caches_release

        def reporting_release() -> None:
            before = _status_mib("VmRSS")
            release()
            print(f"  serving builds released: {before} -> "
                  f"{_status_mib('VmRSS')} MiB resident")  # fmt: skip

        fitting.serving_caches_release = reporting_release  # type: ignore[assignment]
    started = time.perf_counter()
    build = engine_build()
    memory = build.memory
    print(f"fit: {time.perf_counter() - started:.0f} s, {build.collaborative}")
    print(f"  estimate {memory['estimate']['total'] / 2**30:.2f} GiB: " + ", ".join(
        f"{part} {size / 2**30:.2f}" for part, size in memory["estimate"].items() if part != "total"
    ))  # fmt: skip
    print(f"  measured peak RSS {(memory['peak_rss'] or 0) / 2**30:.2f} GiB")
    if not args.fit_only:
        serving_engine_recheck()
        started = time.perf_counter()
        sample = tuning_sample()
        print(f"tuning sample: {time.perf_counter() - started:.0f} s, {sample.customers} customers")
    sampler.running = False
    print(f"process peak RSS {_status_mib('VmHWM') / 1024:.2f} GiB; highest places (MiB):")
    for place, rss in sorted(sampler.peaks.items(), key=lambda kv: -kv[1])[: args.places]:
        print(f"  {rss:>7} {place}")


if __name__ == "__main__":
    main()
