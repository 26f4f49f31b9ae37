"""The sequential step's memory as ``manage.py train`` reaches it, without the whole train.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale_1m \\
        RECSITE_VAR_DIR=/work/bench-data/var-scale-1m RECSITE_EMBEDDER=hashing \\
        RECSITE_HASHING_DIMENSION=384 DJANGO_SETTINGS_MODULE=recsite.settings.base \\
        RECSITE_SEQUENTIAL=auto .venv/bin/python bench/sequential_memory.py [--alone]

On a database ``bench/scale.py --keep-db`` leaves (trained). First loads what the earlier steps
of a train job leave in the process (the serving index and one search of it, as automatic
tuning does; the serving engine and the tuning sample, as the tuning-sample step does), unless
``--alone``; then runs ``sequential_build()`` (it publishes a build) while a thread samples the
process's resident memory every 0.5 s with the main thread's innermost project frames. Prints
what was held before the step, the build's message, the peak, and the highest memory seen in
each phase.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alone", action="store_true", help="Load nothing before the step.")
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np

    from recommender.services.budget import process_memory
    from recommender.services.embeddings import get_embedder
    from recommender.services.index import serving_index
    from recommender.services.recommendations import serving_engine
    from recommender.services.sequential import sequential_build
    from recommender.services.tuning import tuning_sample

    main_thread = threading.main_thread().ident
    samples: list[tuple[float, str]] = []
    done = threading.Event()

    def where() -> str:
        frame = sys._current_frames().get(main_thread or 0)
        names = [f.name for f in traceback.extract_stack(frame) if "/recommender/" in f.filename]
        return names[-3] if len(names) >= 3 else " > ".join(names)

    def sample() -> None:
        while not done.is_set():
            with open("/proc/self/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
            samples.append((rss / 2**20, where()))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if not args.alone:
        index = serving_index(model_name=get_embedder().model_name)
        index.search(np.ones(get_embedder().dimension, dtype=np.float32), 10)
        serving_engine()
        tuning_sample()
    print(f"held before the step: {process_memory() / 2**30:.2f} GiB", flush=True)
    outcome = sequential_build()
    done.set()
    sampler.join()
    print(outcome.message)
    print(f"peak {max(rss for rss, _ in samples):.2f} GiB")
    phases: dict[str, float] = {}
    for rss, phase in samples:
        phases[phase] = max(phases.get(phase, 0.0), rss)
    for phase, rss in sorted(phases.items(), key=lambda kv: -kv[1])[:10]:
        print(f"{rss:6.2f} GiB  {phase}")


if __name__ == "__main__":
    main()
