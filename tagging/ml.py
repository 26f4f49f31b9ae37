"""Framework-free tagging models: zero-shot and supervised tag scoring over vectors.

Everything here works on numpy arrays of L2-normalised product and tag vectors from the same
embedder; the services load and store them.

- :class:`ZeroShotTagger`: cosine of a product vector with each tag's vector (the tag's
  ``name + description`` embedded by the same model). Raw cosines are not comparable across tags
  (a broad tag sits near everything), so each tag's scores are standardised over the catalogue
  (z-scores), then turned into a distribution over tags by a softmax with a temperature. The
  temperature is fitted on confirmed tags when any exist (minimum negative log-likelihood), so a
  confidence of 0.7 means about 70% of such suggestions are right.
- :class:`SupervisedTagger`: a multinomial logistic regression (or a cosine kNN) on product
  vectors, trained on accepted tags; products whose only reviews are rejections form a
  background class, so rejections push confidence down near them.
- :func:`per_tag_winner`: on held-out confirmed tags, which of the two taggers has the better F1
  for each tag; the supervised one takes over only where it wins.
- :func:`tfidf_lr_fit`: the TF-IDF (word + character n-grams) + logistic-regression baseline of
  the evaluation.
- :func:`suggest`: calibrated threshold + top-k, multi-label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKGROUND = "__background__"  # Class of products whose reviews were only rejections.
DEFAULT_TEMPERATURE = 0.35  # On z-scores; used until confirmed tags allow a fit.
_TEMPERATURES = np.geomspace(0.02, 5.0, 60)


def tag_text(name: str, description: str = "") -> str:
    """The text embedded for a tag: its leaf, its path read from the top, its description.

    ``"dairy eggs/yogurt"`` reads ``"yogurt (dairy eggs)"``: the leaf says what the tag is, the
    path disambiguates (``"frozen/breakfast"`` vs ``"breakfast/cereal"``).
    """
    parts = [p.strip() for p in name.split("/") if p.strip()]
    if not parts:
        raise ValueError("tag name is empty")
    text = parts[-1] if len(parts) == 1 else f"{parts[-1]} ({' '.join(parts[:-1])})"
    description = " ".join(description.split())
    return f"{text}: {description}" if description else text


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The softmax temperature with the least negative log-likelihood of ``targets``.

    A grid search over a log scale: one parameter, and the likelihood is smooth in it.
    """
    if len(targets) == 0:
        raise ValueError("no confirmed examples to fit a temperature on")
    rows = np.arange(len(targets))
    best, best_nll = DEFAULT_TEMPERATURE, math.inf
    for t in _TEMPERATURES:
        p = softmax(logits / t)[rows, targets]
        nll = float(-np.log(np.maximum(p, 1e-12)).mean())
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


@dataclass
class ZeroShotTagger:
    """Product vs tag vectors, standardised per tag, softmax with a fitted temperature.

    ``mean``/``std``: each tag's cosine statistics over the catalogue (set by :meth:`fit`);
    ``standardise=False`` keeps raw cosines (the evaluation reports both).
    """

    tag_vectors: np.ndarray
    standardise: bool = True
    temperature: float = DEFAULT_TEMPERATURE
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, catalogue_vectors: np.ndarray) -> ZeroShotTagger:
        """Per-tag cosine statistics over the catalogue (or a sample of it)."""
        if self.standardise and len(catalogue_vectors):
            cos = np.asarray(catalogue_vectors, dtype=np.float32) @ self.tag_vectors.T
            self.mean = cos.mean(axis=0)
            self.std = np.maximum(cos.std(axis=0), 1e-6)
        if not self.standardise:
            # Raw cosines live on a much narrower scale than z-scores.
            self.temperature = min(self.temperature, 0.05)
        return self

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        cos = np.asarray(vectors, dtype=np.float32) @ self.tag_vectors.T
        if self.standardise and self.mean is not None and self.std is not None:
            return (cos - self.mean) / self.std
        return cos

    def calibrate(self, vectors: np.ndarray, targets: np.ndarray) -> ZeroShotTagger:
        """Fit the temperature on confirmed (vector, tag column) pairs."""
        self.temperature = fit_temperature(self.logits(vectors), targets)
        return self

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(self.logits(vectors) / self.temperature)


@dataclass
class SupervisedTagger:
    """A classifier on product vectors learned from confirmed tags.

    ``classes`` are column indexes into the caller's tag list, plus possibly -1 for the
    background class (products whose reviews were only rejections). :meth:`predict_proba`
    returns one column per tag of the caller's list (zeros for tags it never saw).
    """

    n_tags: int
    method: str = "logistic"  # "logistic" or "knn"
    c: float = 8.0  # Inverse L2 strength of the logistic regression.
    k: int = 20  # Neighbours of the kNN.
    model: Any = None
    classes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    train_vectors: np.ndarray | None = None
    train_targets: np.ndarray | None = None

    def fit(self, vectors: np.ndarray, targets: np.ndarray, *, seed: int = 0) -> SupervisedTagger:
        """``targets``: a tag column per row, or -1 for a background (rejected-only) row."""
        targets = np.asarray(targets, dtype=np.int64)
        self.classes = np.unique(targets)
        if self.method == "knn":
            self.train_vectors = np.asarray(vectors, dtype=np.float32)
            self.train_targets = targets
            return self
        if self.method != "logistic":
            raise ValueError(f"method: expected 'logistic' or 'knn', got {self.method!r}")
        if len(self.classes) < 2:
            return self  # One class: predict_proba answers it with certainty.
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=self.c, max_iter=200, random_state=seed)
        self.model.fit(np.asarray(vectors, dtype=np.float32), targets)
        return self

    def _class_proba(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.method == "knn":
            if self.train_vectors is None or self.train_targets is None:
                raise RuntimeError("the kNN tagger is not fitted")
            return knn_proba(
                self.train_vectors, self.train_targets, vectors, classes=self.classes, k=self.k
            )
        if self.model is None:
            return np.ones((len(vectors), len(self.classes)), dtype=np.float64)
        return np.asarray(self.model.predict_proba(vectors), dtype=np.float64)

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        proba = self._class_proba(vectors)
        out = np.zeros((len(proba), self.n_tags), dtype=np.float64)
        keep = self.classes >= 0
        out[:, self.classes[keep]] = proba[:, keep]
        return out


class FineTunedTagger:
    """The sentence encoder fine-tuned with a linear head on confirmed tags.

    The token embeddings (and any layers below the top ``tune_layers``; default: all layers are
    tuned) stay frozen: their output for every text is computed once and cached (bfloat16), so
    an epoch only runs the tuned layers forward and backward. Freezing the 30k-row
    word-embedding table is what makes this affordable on a CPU: its dense AdamW update alone
    cost ~3 s per batch, the six transformer layers ~0.25 s per batch of 64 titles on 2 cores.
    The defaults (every layer of MiniLM-L6, six epochs, peak learning rate 1.5e-4) were chosen
    on the Instacart validation split (docs/evaluation.md). Early stopping: after each epoch
    the validation rows (never the test rows) are scored, and the best epoch's weights are
    kept. torch and transformers are imported here only; ``model_path`` is a local model
    directory.
    """

    def __init__(
        self,
        *,
        model_path: str,
        n_classes: int,
        tune_layers: int | None = None,
        epochs: int = 6,
        batch_size: int = 64,
        lr: float = 1.5e-4,
        head_lr: float = 3e-3,
        max_length: int = 48,
        seed: int = 0,
        device: str = "auto",
        log: Callable[[str], None] | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from recommender.ml.embedding import resolve_device

        torch.manual_seed(seed)
        self.torch = torch
        self.device = torch.device(resolve_device(device, cuda_available=torch.cuda.is_available()))
        self.n_classes, self.epochs, self.batch_size = n_classes, epochs, batch_size
        self.lr, self.head_lr, self.max_length, self.seed = lr, head_lr, max_length, seed
        self.say = log or (lambda message: None)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        model = AutoModel.from_pretrained(
            model_path, local_files_only=True, attn_implementation="eager"
        ).to(self.device)
        model.eval()
        layers = model.encoder.layer
        tune_layers = len(layers) if tune_layers is None else tune_layers
        if not 1 <= tune_layers <= len(layers):
            raise ValueError(f"tune_layers: must be within 1 and {len(layers)}, got {tune_layers}")
        self.embeddings = model.embeddings
        self.frozen = layers[: len(layers) - tune_layers]
        self.top = layers[len(layers) - tune_layers :]
        self.head = torch.nn.Linear(model.config.hidden_size, n_classes).to(self.device)
        self.best_epoch = 0

    def _tokens(self, texts: Sequence[str]) -> tuple[Any, Any]:
        encoded = self.tokenizer(
            [t.strip() for t in texts],
            truncation=True,
            max_length=self.max_length,
            padding="max_length",
            return_tensors="pt",
        )
        return encoded["input_ids"], encoded["attention_mask"]

    def _extended(self, mask: Any) -> Any:
        torch = self.torch
        return (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min

    def _bottom(self, texts: Sequence[str], progress: Callable[[int, int], None] | None) -> Any:
        """(hidden states after the frozen layers in bfloat16, attention masks, lengths)."""
        torch = self.torch
        ids, mask = self._tokens(texts)
        lengths = mask.sum(dim=1)
        hidden_all = torch.zeros(
            (len(texts), ids.shape[1], self.head.in_features), dtype=torch.bfloat16
        )
        order = torch.argsort(lengths)
        with torch.inference_mode():
            for start in range(0, len(texts), 512):
                rows = order[start : start + 512]
                width = int(lengths[rows].max())
                m = mask[rows, :width].to(self.device)
                hidden = self.embeddings(input_ids=ids[rows, :width].to(self.device))
                for layer in self.frozen:
                    hidden = layer(hidden, attention_mask=self._extended(m))[0]
                hidden_all[rows, :width] = hidden.to(torch.bfloat16).cpu()
                if progress is not None:
                    progress(min(start + 512, len(texts)), len(texts))
        return hidden_all, mask, lengths

    def _top_logits(self, hidden: Any, mask: Any) -> Any:
        """Logits of cached bottom states (CPU, bfloat16), computed on the tagger's device."""
        hidden = hidden.to(self.device, self.torch.float32)
        mask = mask.to(self.device)
        extended = self._extended(mask)
        for layer in self.top:
            hidden = layer(hidden, attention_mask=extended)[0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        pooled = self.torch.nn.functional.normalize(pooled, dim=1)
        return self.head(pooled) * 20.0  # A fixed scale: cosine-like logits need a wide range.

    def _batches(self, lengths: Any, shuffle: bool, generator: Any) -> list[Any]:
        """Rows grouped by similar length (little padding), batch order shuffled."""
        torch = self.torch
        order = torch.argsort(
            lengths + (torch.rand(len(lengths), generator=generator) if shuffle else 0)
        )
        batches = list(torch.split(order, self.batch_size))
        if shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches

    def _proba(self, cached: Any) -> np.ndarray:
        torch = self.torch
        hidden_all, mask, lengths = cached
        out = np.zeros((len(lengths), self.n_classes), dtype=np.float64)
        for module in (*self.top, self.head):
            module.eval()
        with torch.inference_mode():
            for rows in self._batches(lengths, False, None):
                width = int(lengths[rows].max())
                logits = self._top_logits(hidden_all[rows, :width], mask[rows, :width])
                out[rows.numpy()] = torch.softmax(logits, dim=1).float().cpu().numpy()
        return out

    def fit(
        self,
        texts: Sequence[str],
        targets: np.ndarray,
        *,
        validation: tuple[Sequence[str], np.ndarray] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> FineTunedTagger:
        import copy

        torch = self.torch
        generator = torch.Generator().manual_seed(self.seed)
        cached = self._bottom(texts, progress)
        y = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        val_cached = self._bottom(validation[0], None) if validation is not None else None
        params = [
            {"params": [p for layer in self.top for p in layer.parameters()], "lr": self.lr},
            {"params": list(self.head.parameters()), "lr": self.head_lr},
        ]
        optimiser = torch.optim.AdamW(params, weight_decay=0.01)
        hidden_all, mask, lengths = cached
        batches_per_epoch = -(-len(lengths) // self.batch_size)
        total_steps = self.epochs * batches_per_epoch
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser,
            max_lr=[self.lr, self.head_lr],
            total_steps=total_steps,
            pct_start=0.1,
        )
        best_accuracy, best_state = -1.0, None
        for epoch in range(1, self.epochs + 1):
            for module in (*self.top, self.head):
                module.train()
            running = 0.0
            for step, rows in enumerate(self._batches(lengths, True, generator), start=1):
                width = int(lengths[rows].max())
                logits = self._top_logits(hidden_all[rows, :width], mask[rows, :width])
                loss = torch.nn.functional.cross_entropy(
                    logits, y[rows].to(self.device), label_smoothing=0.05
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                running += loss.item()
                if step % 100 == 0 or step == batches_per_epoch:
                    self.say(
                        f"fine-tune epoch {epoch}: batch {step}/{batches_per_epoch}, "
                        f"mean loss {running / step:.3f}"
                    )
            if validation is None:
                continue
            accuracy = float((np.argmax(self._proba(val_cached), axis=1) == validation[1]).mean())
            self.say(f"fine-tune epoch {epoch}: validation accuracy {accuracy:.4f}")
            if accuracy > best_accuracy:
                best_accuracy, self.best_epoch = accuracy, epoch
                best_state = copy.deepcopy(
                    ([layer.state_dict() for layer in self.top], self.head.state_dict())
                )
        if best_state is not None:
            for layer, state in zip(self.top, best_state[0], strict=True):
                layer.load_state_dict(state)
            self.head.load_state_dict(best_state[1])
        else:
            self.best_epoch = self.epochs
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._proba(self._bottom(texts, None))


def knn_proba(
    train: np.ndarray,
    train_targets: np.ndarray,
    queries: np.ndarray,
    *,
    classes: np.ndarray,
    k: int,
    chunk: int = 2048,
) -> np.ndarray:
    """Cosine-weighted vote of the ``k`` nearest training vectors, normalised per row."""
    position = {int(c): i for i, c in enumerate(classes)}
    columns = np.array([position[int(t)] for t in train_targets], dtype=np.int64)
    k = max(1, min(k, len(train)))
    out = np.zeros((len(queries), len(classes)), dtype=np.float64)
    for start in range(0, len(queries), chunk):
        sims = queries[start : start + chunk] @ train.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) + 1e-6
        block = out[start : start + chunk]
        rows = np.repeat(np.arange(len(block)), k)
        np.add.at(block, (rows, columns[top].ravel()), weights.ravel())
    return out / out.sum(axis=1, keepdims=True)


def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 of each class (NaN where a class is neither true nor predicted)."""
    tp = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(np.float64)
    true = np.bincount(y_true, minlength=n_classes).astype(np.float64)
    pred = np.bincount(y_pred, minlength=n_classes).astype(np.float64)
    denominator = true + pred
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def per_tag_winner(
    y_true: np.ndarray, zero_shot_pred: np.ndarray, supervised_pred: np.ndarray, n_tags: int
) -> np.ndarray:
    """True for each tag where the supervised tagger's held-out F1 beats zero-shot's.

    A tag with no held-out example stays with zero-shot: nothing shows supervised wins there.
    """
    zs = np.nan_to_num(f1_per_class(y_true, zero_shot_pred, n_tags), nan=-1.0)
    sup = np.nan_to_num(f1_per_class(y_true, supervised_pred, n_tags), nan=-1.0)
    seen = np.bincount(y_true, minlength=n_tags) > 0
    return seen & (sup > zs)


def combine(zero_shot: np.ndarray, supervised: np.ndarray | None, winner: np.ndarray) -> np.ndarray:
    """Per tag, the probability of the tagger that won it; rows renormalised to sum to 1."""
    if supervised is None or not winner.any():
        return zero_shot
    mixed = np.where(winner[None, :], supervised, zero_shot)
    total = mixed.sum(axis=1, keepdims=True)
    return np.divide(mixed, total, out=np.zeros_like(mixed), where=total > 0)


@dataclass(frozen=True, slots=True)
class Suggestion:
    row: int  # Row of the product in the scored matrix.
    tag: int  # Column of the tag.
    confidence: float


def suggest(proba: np.ndarray, *, threshold: float, top_k: int) -> list[Suggestion]:
    """Multi-label suggestions: up to ``top_k`` tags per product with confidence >= threshold."""
    if top_k < 1:
        raise ValueError(f"top_k: must be >= 1, got {top_k}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: must be within [0, 1], got {threshold}")
    out: list[Suggestion] = []
    if proba.size == 0:
        return out
    k = min(top_k, proba.shape[1])
    top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    for row, columns in enumerate(top):
        for column in columns:
            p = float(proba[row, column])
            if p < threshold:
                break
            out.append(Suggestion(row=row, tag=int(column), confidence=min(max(p, 0.0), 1.0)))
    return out


def topk_accuracy(proba: np.ndarray, y_true: np.ndarray, k: int) -> float:
    top = np.argsort(-proba, axis=1)[:, :k]
    return float((top == y_true[:, None]).any(axis=1).mean())


def classification_metrics(proba: np.ndarray, y_true: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (over classes present in the truth) and top-3 accuracy."""
    pred = np.argmax(proba, axis=1)
    f1 = f1_per_class(y_true, pred, proba.shape[1])
    present = np.bincount(y_true, minlength=proba.shape[1]) > 0
    return {
        "accuracy": round(float((pred == y_true).mean()), 4),
        "macro_f1": round(float(np.nan_to_num(f1[present]).mean()), 4),
        "top3_accuracy": round(topk_accuracy(proba, y_true, 3), 4),
    }


def tfidf_lr_fit(
    texts: Sequence[str], targets: np.ndarray, *, c: float = 10.0, seed: int = 0
) -> Any:
    """TF-IDF over word 1-2-grams and character 2-5-grams, then a logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    )
    model = make_pipeline(features, LogisticRegression(C=c, max_iter=200, random_state=seed))
    model.fit(list(texts), targets)
    return model


def stratified_split(
    targets: np.ndarray, *, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indexes (train, test), stratified by class; a class with one row stays in train."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size: must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for cls in np.unique(targets):
        rows = rng.permutation(np.flatnonzero(targets == cls))
        n_test = round(len(rows) * test_size) if len(rows) > 1 else 0
        n_test = min(n_test, len(rows) - 1)
        test.extend(rows[:n_test])
        train.extend(rows[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def _proba_full(model: Any, x: Any, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class index 0..n-1 (classes absent from training: 0)."""
    proba = np.asarray(model.predict_proba(x), dtype=np.float64)
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(model.classes_, dtype=np.int64)] = proba
    return out


@dataclass
class EvaluationData:
    """One labelled catalogue: texts, vectors of those texts, label vectors, class indexes."""

    texts: list[str]
    vectors: np.ndarray
    targets: np.ndarray
    labels: list[str]
    label_vectors: np.ndarray


Log = Callable[[str], None]

ENSEMBLES: Mapping[str, tuple[str, ...]] = {
    "ensemble_embeddings": ("finetune", "knn"),
    "ensemble_hybrid": ("finetune", "knn", "tfidf_lr"),
}


def evaluate_taggers(
    data: EvaluationData,
    *,
    test_size: float,
    seed: int,
    validation_size: float = 0.1,
    # Small grids: on a shared 2-core CPU each logistic-regression fit over 134 classes takes
    # minutes. Unit-norm embeddings need a weaker penalty (larger C) than TF-IDF features.
    c_grid: Sequence[float] = (10.0, 100.0),
    tfidf_c_grid: Sequence[float] = (3.0, 30.0),
    k_grid: Sequence[int] = (10, 25),
    methods: Sequence[str] = ("zero_shot", "logistic", "knn", "mlp", "tfidf_lr"),
    finetune_model_path: str | None = None,
    finetune_options: Mapping[str, Any] | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Every method side by side on one stratified split.

    Hyperparameters (C, k, zero-shot temperature and standardisation) are chosen on a
    validation split carved out of the training rows; the test rows are scored once, at the end,
    by models refitted on the whole training split.
    """
    say = log or (lambda message: None)
    n_classes = len(data.labels)
    y = data.targets
    train, test = stratified_split(y, test_size=test_size, seed=seed)
    sub_rows, val_rows = stratified_split(y[train], test_size=validation_size, seed=seed + 1)
    sub, val = train[sub_rows], train[val_rows]
    if not len(val):
        # Too few rows for a validation split (tiny catalogues): choose on the training rows.
        sub = val = train
    x = np.asarray(data.vectors, dtype=np.float32)
    results: dict[str, Any] = {}
    chosen: dict[str, Any] = {}
    test_proba: dict[str, np.ndarray] = {}

    def report(name: str, proba: np.ndarray) -> None:
        test_proba[name] = proba
        results[name] = classification_metrics(proba, y[test])
        say(f"{name}: {results[name]}")

    if "zero_shot" in methods:
        best: tuple[float, bool, float] | None = None
        for standardise in (False, True):
            zs = ZeroShotTagger(data.label_vectors, standardise=standardise).fit(x)
            zs.calibrate(x[sub], y[sub])
            accuracy = float((np.argmax(zs.logits(x[val]), axis=1) == y[val]).mean())
            say(f"zero-shot standardise={standardise}: validation accuracy {accuracy:.4f}")
            if best is None or accuracy > best[0]:
                best = (accuracy, standardise, zs.temperature)
        assert best is not None
        zs = ZeroShotTagger(data.label_vectors, standardise=best[1]).fit(x)
        zs.calibrate(x[train], y[train])
        chosen["zero_shot"] = {"standardise": best[1], "temperature": zs.temperature}
        report("zero_shot", zs.predict_proba(x[test]))
        # The uncalibrated, unstandardised cosine, for honesty about what standardising buys.
        raw = ZeroShotTagger(data.label_vectors, standardise=False).fit(x)
        report("zero_shot_raw_cosine", raw.predict_proba(x[test]))

    def pick(name: str, grid: Sequence[Any], build: Callable[[Any], Any]) -> Any:
        if len(grid) == 1:
            return grid[0]  # Nothing to choose: skip the validation fits.
        scores = []
        for value in grid:
            model = build(value).fit(x[sub], y[sub])
            proba = model.predict_proba(x[val])
            accuracy = float((np.argmax(proba, axis=1) == y[val]).mean())
            say(f"{name} {value}: validation accuracy {accuracy:.4f}")
            scores.append(accuracy)
        return grid[int(np.argmax(scores))]

    if "logistic" in methods:
        c = pick("logistic C", c_grid, lambda v: SupervisedTagger(n_classes, c=v))
        model = SupervisedTagger(n_classes, c=c).fit(x[train], y[train], seed=seed)
        chosen["logistic"] = {"C": c}
        report("logistic", model.predict_proba(x[test]))

    if "knn" in methods:
        k = pick("knn k", k_grid, lambda v: SupervisedTagger(n_classes, method="knn", k=v))
        model = SupervisedTagger(n_classes, method="knn", k=k).fit(x[train], y[train])
        chosen["knn"] = {"k": k}
        report("knn", model.predict_proba(x[test]))

    if "mlp" in methods:
        from sklearn.neural_network import MLPClassifier

        # Early stopping holds out its own 10% of the training rows: never the test rows.
        mlp = MLPClassifier(
            hidden_layer_sizes=(1024,),
            alpha=1e-4,
            batch_size=256,
            learning_rate_init=1e-3,
            max_iter=60,
            early_stopping=True,
            n_iter_no_change=4,
            random_state=seed,
        )
        mlp.fit(x[train], y[train])
        chosen["mlp"] = {"hidden": 1024, "epochs": int(mlp.n_iter_)}
        report("mlp", _proba_full(mlp, x[test], n_classes))

    if "finetune" in methods:
        if finetune_model_path is None:
            raise ValueError("finetune: needs the model directory (finetune_model_path)")
        texts_all = list(data.texts)
        tuned = FineTunedTagger(
            model_path=finetune_model_path,
            n_classes=n_classes,
            seed=seed,
            log=say,
            **dict(finetune_options or {}),
        )
        # Trained on the training rows minus the validation rows, which pick the best epoch.
        tuned.fit(
            [texts_all[i] for i in sub],
            y[sub],
            validation=([texts_all[i] for i in val], y[val]) if len(val) else None,
        )
        chosen["finetune"] = {
            "tune_layers": len(tuned.top),
            "epochs": tuned.epochs,
            "best_epoch": tuned.best_epoch,
        }
        report("finetune", tuned.predict_proba([texts_all[i] for i in test]))

    if "tfidf_lr" in methods:
        texts = np.array(data.texts, dtype=object)
        scores = []
        for value in tfidf_c_grid if len(tfidf_c_grid) > 1 else ():
            model = tfidf_lr_fit(texts[sub], y[sub], c=value, seed=seed)
            proba = _proba_full(model, texts[val], n_classes)
            accuracy = float((np.argmax(proba, axis=1) == y[val]).mean())
            say(f"tfidf_lr C {value}: validation accuracy {accuracy:.4f}")
            scores.append(accuracy)
        c = tfidf_c_grid[int(np.argmax(scores))] if scores else tfidf_c_grid[0]
        model = tfidf_lr_fit(texts[train], y[train], c=c, seed=seed)
        chosen["tfidf_lr"] = {"C": c}
        report("tfidf_lr", _proba_full(model, texts[test], n_classes))

    # Equal-weight averages of the members' probabilities: nothing is fitted or chosen, so they
    # need no validation rows. The first uses the language model only; the second adds the
    # lexical baseline, to show what each kind of evidence adds to the other.
    for name, members in ENSEMBLES.items():
        if all(member in test_proba for member in members):
            report(name, np.mean([test_proba[member] for member in members], axis=0))
            chosen[name] = {"members": list(members), "weights": "equal"}

    per_class = np.bincount(y[train], minlength=n_classes)
    return {
        "methods": results,
        "hyperparameters": chosen,
        "split": {
            "train": len(train),
            "test": len(test),
            "validation_within_train": len(val),
            "classes": n_classes,
            "test_size": test_size,
            "seed": seed,
        },
        "train_examples_per_class": {
            "min": int(per_class.min()) if n_classes else 0,
            "median": float(np.median(per_class)) if n_classes else 0.0,
            "max": int(per_class.max()) if n_classes else 0,
            "by_class": {data.labels[i]: int(n) for i, n in enumerate(per_class)},
        },
    }


def label_index(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted distinct labels and each row's index into them."""
    names = sorted(set(labels))
    position: Mapping[str, int] = {name: i for i, name in enumerate(names)}
    return names, np.array([position[label] for label in labels], dtype=np.int64)
