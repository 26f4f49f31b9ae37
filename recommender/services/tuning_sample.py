"""The tuning sample and its files: :class:`TuningSample` (a fixed leave-last-out sample of one
engine build, with the engine fitted on its training split) and how it is saved beside the
build's file, loaded by the other processes, locked while one prepares it, and pruned with the
build. Preparing and caching it, and the metrics over it, are ``tuning``'s.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recommender.ml.engine import (
    CandidateSet,
    History,
    HybridEngine,
)
from recommender.ml.files import atomic_write

logger = logging.getLogger(__name__)


@dataclass
class TuningSample:
    """A fixed leave-last-out sample of one engine build (see the module notes)."""

    build_path: str
    engine: HybridEngine  # Fitted on the training split with the build's fit-time fields.
    event_types: tuple[str, ...]
    histories: list[History]
    times: list[float]
    targets: np.ndarray  # Engine row of each customer's held-out product.
    vectors: np.ndarray
    has_vector: np.ndarray
    active: np.ndarray
    categories: list[str]
    n_active: int
    eligible: int  # Held-out customers the sample was drawn from.
    events: int
    prepared_seconds: float
    cache: OrderedDict[str, dict[str, float]] = field(default_factory=OrderedDict)
    scores: OrderedDict[str, list[CandidateSet]] = field(default_factory=OrderedDict)
    # The serving build's embedding model (its index is the sample's search at scale).
    model_name: str = ""

    @property
    def customers(self) -> int:
        return len(self.histories)


# The prepared sample on disk: the training-split engine (HybridEngine.save) and the sample's
# arrays, beside the build's file and named after it; removed once that file is gone.
_SAMPLE_FORMAT = "recsite-tuning-sample"
_SAMPLE_VERSION = 1


@dataclass(frozen=True)
class SampleFiles:
    engine: Path
    arrays: Path
    lock: Path

    @classmethod
    def of(cls, build_path: str, *, size: int, seed: int) -> SampleFiles:
        build = Path(build_path)
        stem = f"{build.stem}.tuning-{size}-{seed}"
        return cls(
            engine=build.with_name(f"{stem}.engine"),
            arrays=build.with_name(f"{stem}.sample.npz"),
            lock=build.with_name(f"{stem}.lock"),
        )

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def sample_save(sample: TuningSample, files: SampleFiles) -> None:
    """Write the engine, then the arrays (their file's presence means both are complete)."""
    try:
        sample.engine.save(files.engine)
        codes = {name: i for i, name in enumerate(sample.event_types)}
        lengths = [len(h.product_ids) for h in sample.histories]
        meta = {
            "format": _SAMPLE_FORMAT,
            "version": _SAMPLE_VERSION,
            "event_types": list(sample.event_types),
            "categories": sample.categories,
            "eligible": sample.eligible,
            "events": sample.events,
            "n_active": sample.n_active,
            "prepared_seconds": sample.prepared_seconds,
        }
        arrays = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            "ids": np.array([p for h in sample.histories for p in h.product_ids], dtype=np.int64),
            "codes": np.array(
                [codes[t] for h in sample.histories for t in h.event_types], dtype=np.int16
            ),
            "stamps": np.array([t for h in sample.histories for t in h.timestamps]),
            "times": np.asarray(sample.times, dtype=np.float64),
            "targets": sample.targets,
            "vectors": sample.vectors,
            "has_vector": sample.has_vector,
            "active": sample.active,
        }
        with atomic_write(files.arrays) as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
    except OSError:
        logger.warning("Could not save the tuning sample to %s", files.arrays, exc_info=True)
    sample_files_prune(files.arrays.parent)


def sample_load(files: SampleFiles, *, build_path: str) -> TuningSample | None:
    if not files.arrays.exists() or not files.engine.exists():
        return None
    try:
        with np.load(files.arrays, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
        if meta.get("format") != _SAMPLE_FORMAT or meta.get("version") != _SAMPLE_VERSION:
            return None
        engine = HybridEngine.load(files.engine)
    except (OSError, ValueError, KeyError):
        logger.warning("Ignoring an unreadable tuning sample at %s", files.arrays, exc_info=True)
        return None
    types = meta["event_types"]
    offsets, ids, codes, stamps = (arrays[k] for k in ("offsets", "ids", "codes", "stamps"))
    histories = [
        History(
            product_ids=ids[lo:hi].tolist(),
            event_types=[types[c] for c in codes[lo:hi]],
            timestamps=stamps[lo:hi].tolist(),
        )
        for lo, hi in itertools.pairwise(offsets.tolist())
    ]
    return TuningSample(
        build_path=build_path,
        engine=engine,
        event_types=tuple(types),
        histories=histories,
        times=arrays["times"].tolist(),
        targets=arrays["targets"],
        vectors=arrays["vectors"],
        has_vector=arrays["has_vector"],
        active=arrays["active"],
        categories=list(meta["categories"]),
        n_active=int(meta["n_active"]),
        eligible=int(meta["eligible"]),
        events=int(meta["events"]),
        prepared_seconds=float(meta["prepared_seconds"]),
    )


def sample_files_prune(directory: Path) -> None:
    """Remove the sample files of builds whose own file is gone (pruned builds)."""
    for path in directory.glob("*.tuning-*"):
        build = path.with_name(path.name.split(".tuning-")[0] + ".engine")
        if not build.exists():
            path.unlink(missing_ok=True)
