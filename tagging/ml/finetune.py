"""Fine-tuning: the sentence encoder trained with a linear head on confirmed tags.

Framework-free; torch and transformers are imported inside :class:`FineTunedTagger` only, so
importing this module costs nothing. Used by the offline evaluation
(:func:`tagging.ml.evaluation.evaluate_taggers`, method ``finetune``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


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
