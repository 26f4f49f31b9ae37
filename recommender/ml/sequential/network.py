"""The torch network of the sequential model (training only; serving runs :mod:`.forward`).

A causal self-attention encoder of the SASRec family (Kang & McAuley 2018), pre-LayerNorm,
whose item embeddings are the language model's product vectors through a learned linear
projection (plus, optionally, a per-product embedding that starts at zero), tied between input
and output as in UniSRec: a product's output embedding is ``W v + b (+ e)``, so a product the
fit never saw is scored from its vector ``v``. Each step adds an event-type, a time-gap and a
position embedding. Imported lazily: only the training worker needs torch.

The arithmetic is written out (no ``nn.MultiheadAttention``) so that :mod:`.forward` can repeat
it in numpy exactly; :func:`export_weights` names every parameter for the artifact.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .config import SequentialConfig


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 2 * dim)
        self.ff2 = nn.Linear(2 * dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, dim = x.shape
        dh = dim // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(dim, dim=-1)
        q = q.view(b, length, self.heads, dh).transpose(1, 2)
        k = k.view(b, length, self.heads, dh).transpose(1, 2)
        v = v.view(b, length, self.heads, dh).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        scores = scores.masked_fill(~mask[:, None, :, :], float("-inf"))
        attn = self.drop(torch.softmax(scores, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, length, dim)
        x = x + self.drop(self.out(out))
        hidden = F.gelu(self.ff1(self.ln2(x)), approximate="tanh")
        return x + self.drop(self.ff2(self.drop(hidden)))


class SequentialNet(nn.Module):
    """Item index ``n_items`` is padding (a zero vector, masked from attention)."""

    vectors: torch.Tensor  # The language-model vectors, a buffer (not a parameter).

    def __init__(
        self,
        *,
        vectors: np.ndarray,
        n_types: int,
        n_gaps: int,
        config: SequentialConfig,
        sparse_ids: bool = False,
    ) -> None:
        """``vectors``: float32, ``(n_items, width)``, used in place (no copy: a million
        products' vectors are 1.5 GB). ``sparse_ids``: the per-product embeddings get sparse
        gradients (:meth:`item_rows` training, with ``torch.optim.SparseAdam``)."""
        super().__init__()
        n, width = vectors.shape
        d = config.dim
        self.n_items = n
        self.config = config
        with warnings.catch_warnings():
            # A mapped, read-only array is fine: the network only ever reads it.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            shared = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        self.register_buffer("vectors", shared, persistent=False)
        self.proj = nn.Linear(width, d)
        self.ids: nn.Embedding | None = None
        if config.id_embeddings:
            self.ids = nn.Embedding(n + 1, d, sparse=sparse_ids)
            nn.init.zeros_(self.ids.weight)
        self.types = nn.Embedding(n_types, d)
        self.gaps = nn.Embedding(n_gaps, d)
        self.pos = nn.Embedding(config.max_len, d)
        for table in (self.types, self.gaps, self.pos):
            nn.init.normal_(table.weight, std=0.02)
        self.in_ln = nn.LayerNorm(d)
        self.blocks = nn.ModuleList(
            _Block(d, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.out_ln = nn.LayerNorm(d)
        self.drop = nn.Dropout(config.dropout)

    def item_matrix(self) -> torch.Tensor:
        """Every product's embedding, ``(n_items + 1, d)`` (the last row is padding: the
        projection of a zero vector)."""
        items = torch.cat([self.proj(self.vectors), self.proj.bias[None]])
        if self.ids is not None:
            items = items + self.ids.weight
        return items

    def item_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Rows ``rows`` of :meth:`item_matrix` (``n_items`` for padding), computed for those
        products alone: a training batch's cost and memory do not grow with the catalogue."""
        real = rows < self.n_items
        picked = self.vectors[torch.where(real, rows, 0)] * real[:, None]
        items = self.proj(picked)
        if self.ids is not None:
            items = items + self.ids(rows)
        return items

    def encode(
        self,
        items: torch.Tensor,
        types: torch.Tensor,
        gaps: torch.Tensor,
        item_matrix: torch.Tensor,
        real: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states ``(b, L, d)`` of left-padded windows ``(b, L)``: ``items`` index
        ``item_matrix``'s rows; ``real`` marks the steps that are not padding (default: the
        items other than ``n_items``, for the whole :meth:`item_matrix`)."""
        b, length = items.shape
        positions = torch.arange(
            self.config.max_len - length, self.config.max_len, device=items.device
        )
        x = self.in_ln(item_matrix[items]) + self.types(types) + self.gaps(gaps)
        x = self.drop(x + self.pos(positions)[None])
        if real is None:
            real = items != self.n_items
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=items.device))
        # Attend to real steps up to oneself; a padding step attends to itself only.
        eye = torch.eye(length, dtype=torch.bool, device=items.device)
        mask = (causal[None] & real[:, None, :]) | eye[None]
        for block in self.blocks:
            x = block(x, mask)
        return self.out_ln(x)


def _parameters(net: SequentialNet) -> list[tuple[str, torch.Tensor]]:
    """Every parameter but the per-product embeddings, under the names :mod:`.forward` reads."""
    named = [
        ("proj_w", net.proj.weight),
        ("proj_b", net.proj.bias),
        ("type_emb", net.types.weight),
        ("gap_emb", net.gaps.weight),
        ("pos_emb", net.pos.weight),
        ("in_ln_w", net.in_ln.weight),
        ("in_ln_b", net.in_ln.bias),
        ("out_ln_w", net.out_ln.weight),
        ("out_ln_b", net.out_ln.bias),
    ]
    for i, block in enumerate(net.blocks):
        assert isinstance(block, _Block)
        for name, layer in (
            ("ln1", block.ln1),
            ("qkv", block.qkv),
            ("out", block.out),
            ("ln2", block.ln2),
            ("ff1", block.ff1),
            ("ff2", block.ff2),
        ):
            named += [(f"b{i}_{name}_w", layer.weight), (f"b{i}_{name}_b", layer.bias)]
    return named


def export_weights(net: SequentialNet) -> dict[str, np.ndarray]:
    """Every parameter as a float32 numpy array, under the names :mod:`.forward` reads."""

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float32).numpy().copy()

    out = {name: arr(tensor) for name, tensor in _parameters(net)}
    if net.ids is not None:
        out["id_emb"] = arr(net.ids.weight[: net.n_items])
    return out


@torch.no_grad()
def import_weights(net: SequentialNet, weights: dict[str, np.ndarray]) -> None:
    """The inverse of :func:`export_weights`: ``weights`` into ``net`` (the padding product's
    embedding stays zero), so the torch network and the numpy forward pass can be compared."""
    for name, tensor in _parameters(net):
        tensor.copy_(torch.from_numpy(np.array(weights[name])))
    if net.ids is not None:
        net.ids.weight.zero_()
        net.ids.weight[: net.n_items] = torch.from_numpy(np.array(weights["id_emb"]))
