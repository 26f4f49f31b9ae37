"""Training the sequential model: seeded, early-stopped on a leave-last-out validation split.

:func:`fit_sequential` builds every customer's product sequence (:mod:`.sequences`), holds out
each eligible customer's last product (the protocol's validation step), trains the network
(:mod:`.network`) on the rest with a softmax over the catalogue (full up to
``full_softmax_max_items`` products, sampled above), scores NDCG@10 on a seeded sample of the
held-out customers after every epoch (full ranking, history masked), and keeps the best epoch's
weights, stopping after ``patience`` epochs without a gain. Reproducible: the same data, config
and seed give the same weights (torch's deterministic algorithms, one seeded generator for the
shuffles and negatives). Runs on CUDA when available (``device="auto"``), else the CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.ml.interactions import Interactions

from .config import SequentialConfig
from .model import SequentialModel
from .sequences import GAP_BUCKETS, Holdout, Sequences, holdout_last, last_window, sequences_from

# Below these, a shop is too small to learn an order from: no model, and a message saying why.
MIN_CUSTOMERS = 20
MIN_VALIDATION = 10
# Scores (float32) the validation holds at a time.
_SCORES_PER_BLOCK = 1 << 25


class NotEnoughData(ValueError):
    """The shop has too few customers with sequences to train (or validate) a model."""


@dataclass
class FitReport:
    """What a fit did: per-epoch validation NDCG@10 and loss, the best epoch, the cost."""

    device: str
    sequences: int  # training windows
    customers: int
    validation_customers: int
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_ndcg: float = 0.0
    seconds: float = 0.0
    validation_seconds: float = 0.0  # Of ``seconds``: scoring the held-out customers.
    sequences_per_second: float = 0.0
    stopped: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "sequences": self.sequences,
            "customers": self.customers,
            "validation_customers": self.validation_customers,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "validation_ndcg@10": round(self.best_ndcg, 5),
            "seconds": round(self.seconds, 2),
            "validation_seconds": round(self.validation_seconds, 2),
            "sequences_per_second": round(self.sequences_per_second, 1),
            "stopped": self.stopped,
        }


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {device!r}")
    return device


@contextlib.contextmanager
def _torch_state(*, threads: int, seed: int) -> Iterator[None]:
    """Deterministic algorithms and ``threads`` intra-op threads for the block, restored after
    (both are process-wide in torch)."""
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(was_threads)


def check_trainable(inter: Interactions, *, min_items: int = 3) -> Holdout:
    """The validation split, or :class:`NotEnoughData` naming what the shop lacks."""
    seqs = sequences_from(inter)
    lengths = seqs.lengths()
    with_order = int((lengths >= 2).sum())
    holdout = holdout_last(seqs, min_items=min_items)
    if with_order < MIN_CUSTOMERS or len(holdout.users) < MIN_VALIDATION:
        raise NotEnoughData(
            f"too little behaviour to learn an order from: {with_order} customers with two or "
            f"more products (at least {MIN_CUSTOMERS} needed) and {len(holdout.users)} with "
            f"{min_items} or more to validate on (at least {MIN_VALIDATION}); the engine serves "
            "without the sequential source"
        )
    return holdout


def fit_sequential(
    inter: Interactions,
    *,
    vectors: np.ndarray,
    config: SequentialConfig | None = None,
    device: str = "auto",
    threads: int | None = None,
    min_items: int = 3,
    progress: Callable[[float], None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[SequentialModel, FitReport]:
    """Train on ``inter`` (its ``item_ids`` aligned with ``vectors``, L2-normalised, zero rows
    for products without one). Raises :class:`NotEnoughData` for a shop too small to learn from.
    ``threads``: torch's CPU threads (None: the config's ``threads``; 0: torch's default).
    """
    import torch

    from .network import SequentialNet, export_weights
    from .sequences import windows

    cfg = config or SequentialConfig()
    report_progress = progress or (lambda _: None)
    holdout = check_trainable(inter, min_items=min_items)
    train = holdout.train
    dev = resolve_device(device)
    n = inter.n_items
    rng = np.random.default_rng(cfg.seed)
    arrays = windows(train, max_len=cfg.max_len, pad=n)
    if not len(arrays[0]):
        raise NotEnoughData("no customer has two products in order; nothing to learn from")
    val_users, val_items = holdout.users, holdout.items
    if len(val_users) > cfg.validation_users:
        chosen = np.sort(rng.choice(len(val_users), size=cfg.validation_users, replace=False))
        val_users, val_items = val_users[chosen], val_items[chosen]
    report = FitReport(
        device=dev,
        sequences=len(arrays[0]),
        customers=int((train.lengths() >= 2).sum()),
        validation_customers=len(val_users),
    )
    started = time.perf_counter()
    sampled = n > cfg.full_softmax_max_items
    with _torch_state(threads=cfg.threads if threads is None else threads, seed=cfg.seed):
        net = SequentialNet(
            vectors=np.asarray(vectors, dtype=np.float32),
            n_types=len(inter.event_types) + 1,
            n_gaps=GAP_BUCKETS,
            config=cfg,
            sparse_ids=sampled,
        ).to(dev)
        loop = _Epochs(
            net=net,
            cfg=cfg,
            device=dev,
            rng=rng,
            optimisers=_optimisers(net, cfg, sparse_ids=sampled),
            tensors=[torch.from_numpy(a) for a in arrays],
            started=started,
            progress=report_progress,
        )
        best_state = loop.run(
            report, validate=lambda: _validate(net, train, val_users, val_items, dev), log=log
        )
        net.load_state_dict(best_state)
        net.eval()
        if net.ids is not None:
            # A product never in a training sequence only ever had its embedding pushed down
            # as a negative: it is scored from its vector alone, as a product newer than the fit.
            untrained = np.ones(n + 1, dtype=bool)
            untrained[np.unique(train.items)] = False
            with torch.no_grad():
                net.ids.weight[torch.from_numpy(untrained).to(dev)] = 0.0
        with torch.no_grad():
            items_matrix = net.item_matrix()[:n].to("cpu", torch.float32).numpy().copy()
        weights = export_weights(net)
    report.seconds = time.perf_counter() - started
    report.sequences_per_second = loop.seen / max(report.seconds, 1e-9)
    report_progress(1.0)
    model = SequentialModel(
        item_ids=np.asarray(inter.item_ids, dtype=np.int64),
        items=items_matrix,
        weights=weights,
        config=cfg,
        event_types=inter.event_types,
        meta={"fit": report.to_dict()},
    )
    return model, report


def _optimisers(net: Any, cfg: SequentialConfig, *, sparse_ids: bool) -> list[Any]:
    """Adam over the network; with ``sparse_ids``, the per-product embeddings apart, under
    ``SparseAdam``, which updates only the rows a batch touched (a dense Adam step would read
    and write every product's row and moments: a million products' 64M values per batch). Weight
    decay applies to the dense parameters only."""
    import torch

    if not sparse_ids or net.ids is None:
        return [
            torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        ]
    ids = net.ids.weight
    dense = [p for p in net.parameters() if p is not ids]
    return [
        torch.optim.Adam(dense, lr=cfg.learning_rate, weight_decay=cfg.weight_decay),
        torch.optim.SparseAdam([ids], lr=cfg.learning_rate),
    ]


@dataclass
class _Epochs:
    """The epochs of one fit: batches until the epoch cap, early stopping or the time budget
    (``max_seconds``, checked after every batch: the epoch under way stops there and is
    validated like any other)."""

    net: Any
    cfg: SequentialConfig
    device: str
    rng: np.random.Generator
    optimisers: list[Any]
    tensors: list[Any]  # Window items, types, gaps, targets (narrow integer torch tensors).
    started: float
    progress: Callable[[float], None]
    seen: int = 0  # Training windows seen, over all epochs.
    out_of_time: bool = False

    def run(
        self, report: FitReport, *, validate: Callable[[], float], log: Callable[[str], None]
    ) -> dict[str, Any]:
        """Train; the best epoch's weights (by validation NDCG@10), with ``report`` filled in."""
        cfg = self.cfg
        best_state: dict[str, Any] | None = None
        stale = 0
        for epoch in range(1, cfg.max_epochs + 1):
            loss, batches = self._epoch(epoch)
            if not batches:  # The budget ended before this epoch's first batch.
                report.stopped = f"time budget {cfg.max_seconds:g} s"
                break
            scoring = time.perf_counter()
            ndcg = validate()
            report.validation_seconds += time.perf_counter() - scoring
            report.epochs.append(
                {
                    "epoch": epoch,
                    "loss": round(loss, 4),
                    "ndcg@10": round(ndcg, 5),
                    "batches": batches,
                }
            )
            log(f"sequential epoch {epoch}: loss {loss:.4f}, validation NDCG@10 {ndcg:.4f}")
            if ndcg > report.best_ndcg or best_state is None:
                report.best_ndcg, report.best_epoch, stale = ndcg, epoch, 0
                best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            else:
                stale += 1
                if stale >= cfg.patience:
                    report.stopped = f"no gain for {cfg.patience} epochs"
                    break
            if self.out_of_time:
                report.stopped = f"time budget {cfg.max_seconds:g} s (in epoch {epoch})"
                break
        else:
            report.stopped = f"max_epochs {cfg.max_epochs}"
        assert best_state is not None  # The first batch always runs, and is validated.
        return best_state

    def _epoch(self, epoch: int) -> tuple[float, int]:
        """One epoch (or its part within the time budget): mean loss, batches run."""
        import torch
        from torch.nn import functional as F

        cfg, net, dev = self.cfg, self.net, self.device
        n = net.n_items
        w = len(self.tensors[0])
        batches = math.ceil(w / cfg.batch_size)
        net.train()
        order = torch.from_numpy(self.rng.permutation(w))
        total, count, done = 0.0, 0, 0
        for b in range(batches):
            elapsed = time.perf_counter() - self.started
            if self.seen and cfg.max_seconds and elapsed > cfg.max_seconds:
                self.out_of_time = True
                break
            at = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            items, types, gaps, targets = (t[at].to(dev, torch.long) for t in self.tensors)
            real = targets != n
            target = targets[real]
            if n <= cfg.full_softmax_max_items:
                matrix = net.item_matrix()
                h = net.encode(items, types, gaps, matrix)[real]
                loss = F.cross_entropy(h @ matrix[:n].T, target)
            else:
                # Sampled softmax over the batch's own products: the embeddings of the window
                # items, targets and negatives alone, never the whole catalogue's.
                negs = torch.from_numpy(self.rng.integers(0, n, size=cfg.negatives)).to(dev)
                rows, local = torch.unique(
                    torch.cat([items.reshape(-1), target, negs]), return_inverse=True
                )
                matrix = net.item_rows(rows)
                m, t = items.numel(), len(target)
                hidden = net.encode(local[:m].view_as(items), types, gaps, matrix, real=items != n)
                h = hidden[real]
                pos = (h * matrix[local[m : m + t]]).sum(-1, keepdim=True)
                neg = h @ matrix[local[m + t :]].T
                neg = neg.masked_fill(target[:, None] == negs[None, :], float("-inf"))
                logits = torch.cat([pos, neg], dim=1)
                loss = F.cross_entropy(logits, torch.zeros_like(target))
            for optimiser in self.optimisers:
                optimiser.zero_grad()
            loss.backward()
            for optimiser in self.optimisers:
                optimiser.step()
            total += float(loss.detach()) * len(target)
            count += len(target)
            self.seen += len(at)
            done = b + 1
            by_epochs = (epoch - 1 + done / batches) / cfg.max_epochs
            by_time = elapsed / cfg.max_seconds if cfg.max_seconds else 0.0
            self.progress(min(1.0, max(by_epochs, by_time)))
        return total / max(count, 1), done


def _validate(
    net: Any, seqs: Sequences, users: np.ndarray, targets: np.ndarray, device: str, k: int = 10
) -> float:
    """Mean NDCG@k of the held-out products, full ranking with each history masked."""
    import torch

    net.eval()
    n = net.n_items
    max_len = net.config.max_len
    total = 0.0
    # Customers scored at a time: 256, fewer above 131,072 products (the scores of a block stay
    # within 128 MB).
    block = max(1, min(256, _SCORES_PER_BLOCK // max(n, 1)))
    with torch.no_grad():
        matrix = net.item_matrix()
        for start in range(0, len(users), block):
            chunk = users[start : start + block]
            rows = [last_window(*seqs.of(int(u)), max_len=max_len, pad=n) for u in chunk]
            items = torch.from_numpy(np.stack([r[0] for r in rows])).to(device)
            types = torch.from_numpy(np.stack([r[1] for r in rows])).to(device)
            gaps = torch.from_numpy(np.stack([r[2] for r in rows])).to(device)
            hidden = net.encode(items, types, gaps, matrix)[:, -1]
            scores = (hidden @ matrix[:n].T).to("cpu").numpy()
            for i, u in enumerate(chunk.tolist()):
                history = seqs.of(int(u))[0]
                row = scores[i]
                row[history] = -np.inf
                target = int(targets[start + i])
                rank = int((row > row[target]).sum())
                if rank < k:
                    total += 1.0 / math.log2(rank + 2)
    return total / max(len(users), 1)
