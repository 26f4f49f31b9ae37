"""The sequential model's training cost and memory as the catalogue grows.

    nice -n 10 .venv/bin/python bench/sequential_training.py [--products 10000,1000000]
        [--customers 20000] [--length 50] [--seconds 60] [--json FILE]

Claim (issue 13): above ``full_softmax_max_items`` products the training batch embeds only its
own products (window items, targets, sampled negatives) and updates only their per-product
rows, so a batch costs the same at 10k and at 1M products, and the fit holds the catalogue's
vectors once (no padded copy) beside a few per-product tables.

For each catalogue size, in a process of its own (so its peak RSS is its own): a synthetic shop
of ``--customers`` customers with ``--length`` products each (Zipf-like popularity, unit random
vectors of dimension 384, events a day apart), and ``fit_sequential`` with the shipped settings
for at most ``--seconds`` of training (one thread, the default). Prints training windows per
second (training alone, and with the validation after each epoch), the process's resident
memory before the fit and its peak, and the validation NDCG@10 of the kept epoch. The ratio of
the largest size's training windows per second to the smallest's is the figure: 1.0 is flat.
CPU only; no AVX-512 or bf16 needed (float32 throughout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _support import cpu_model  # noqa: E402

DAY = 86_400.0
DIMENSION = 384


def one(products: int, customers: int, length: int, seconds: float) -> dict[str, float]:
    """One size, in this process: the shop, the fit, its figures."""
    import numpy as np

    from recommender.ml.interactions import interactions_from_columns
    from recommender.ml.sequential import SequentialConfig, fit_sequential

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((products, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cdf = np.cumsum(1.0 / np.arange(1, products + 1) ** 0.8)
    cdf /= cdf[-1]
    events = customers * length
    product = np.minimum(np.searchsorted(cdf, rng.random(events)), products - 1)
    customer = np.repeat(np.arange(customers, dtype=np.int64), length)
    step = np.tile(np.arange(length, dtype=np.float64), customers)
    start = rng.uniform(0, 300, size=customers) * DAY
    inter = interactions_from_columns(
        customer=customer,
        product=product.astype(np.int64),
        code=np.zeros(events, dtype=np.int8),
        timestamp=np.repeat(start, length) + step * DAY,
        quantity=np.ones(events, dtype=np.float32),
        basket=np.full(events, -1, dtype=np.int64),
        event_types=["purchase"],
        catalogue_ids=np.arange(products, dtype=np.int64),
    )
    del product, customer, step
    before = _rss()
    config = SequentialConfig(max_seconds=seconds)
    _, fit = fit_sequential(inter, vectors=vectors, config=config, device="cpu")
    return {
        "products": products,
        "windows": fit.sequences,
        "windows_per_s": round(fit.sequences_per_second, 1),
        # Training alone (the fit's time less the validation after each epoch).
        "training_windows_per_s": round(
            fit.sequences_per_second
            * fit.seconds
            / max(fit.seconds - fit.validation_seconds, 1e-9),
            1,
        ),
        "validation_s": round(fit.validation_seconds, 1),
        "epochs": len(fit.epochs),
        "batches": sum(int(e["batches"]) for e in fit.epochs),
        "validation_ndcg@10": round(fit.best_ndcg, 4),
        "rss_before_fit_mb": round(before / 2**20),
    }


def _rss() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", default="10000,1000000", help="Catalogue sizes.")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="Training time per size.")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # Internal: one size.
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.customers, args.length, args.seconds)))
        return
    print(
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {cpu_model()}, "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; Python "
        f"{platform.python_version()}",
        flush=True,
    )
    results = []
    for products in (int(p) for p in args.products.split(",")):
        command = [
            sys.executable, __file__, "--one", str(products), "--customers", str(args.customers),
            "--length", str(args.length), "--seconds", str(args.seconds),
        ]  # fmt: skip
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        assert process.stdout is not None
        output = process.stdout.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the fit at {products:,} products failed")
        figures = json.loads(output.strip().splitlines()[-1])
        figures["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
        results.append(figures)
        print(
            f"{products:>9,} products: {figures['training_windows_per_s']:,.0f} windows/s in "
            f"training, {figures['windows_per_s']:,.0f} with validation ({figures['batches']:,} "
            f"batches, {figures['epochs']} epoch(s), validation {figures['validation_s']} s); "
            f"RSS before the fit "
            f"{figures['rss_before_fit_mb']:,} MiB, peak {figures['peak_rss_mb']:,} MiB; "
            f"validation NDCG@10 {figures['validation_ndcg@10']}",
            flush=True,
        )
    ratio = results[-1]["training_windows_per_s"] / results[0]["training_windows_per_s"]
    print(f"training windows/s at the largest size / the smallest: {ratio:.2f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
