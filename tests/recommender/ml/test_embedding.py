"""Embedders: the real packaged all-MiniLM-L6-v2 against sentence-transformers, the batching
helpers that the CPU and GPU paths share, and the weight-free HashingEmbedder."""

import csv
import gzip
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.ml.embedding import (
    DEFAULT_MAX_LENGTH,
    Embedder,
    HashingEmbedder,
    TransformerEmbedder,
    cpu_supports_bf16,
    default_model_path,
    mean_pool_normalize,
    pad_token_ids,
    plan_batches,
    resolve_device,
    resolve_dtype,
)
from tests.conftest import REPO_ROOT

# Below this cosine a vector would not be the model's vector any more (int8 quantisation, for
# one, lands near 0.91 on these titles).
AGREEMENT = 0.999


# The real model, loaded once per test session --------------------------------------------------


@pytest.fixture(scope="session")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_model_path()), device="cpu")


@pytest.fixture(scope="session")
def embedder_fp32():
    return TransformerEmbedder(device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def embedder_bf16():
    # bfloat16 is what dtype="auto" picks on CPUs with native support (this machine's EPYC);
    # elsewhere torch emulates it, slower but numerically the same.
    return TransformerEmbedder(device="cpu", dtype="bfloat16")


@pytest.fixture
def real_texts(shared_data):
    """50 real product titles from three catalogues, the longest H&M descriptions, one text
    past the 256-token limit, and edge cases (padding spaces, an empty text)."""
    with gzip.open(
        shared_data / "online_retail" / "online_retail_2010-12_2011-12.csv.gz",
        "rt",
        encoding="utf-8",
        newline="",
    ) as f:
        retail = list(
            itertools.islice(dict.fromkeys(r["Description"] for r in csv.DictReader(f)), 17)
        )
    with (shared_data / "amazon_office" / "products.csv").open(encoding="utf-8") as f:
        amazon = [r["title"] for r in itertools.islice(csv.DictReader(f), 17)]
    with (shared_data / "instacart" / "products.csv").open(encoding="utf-8") as f:
        instacart = [r["product_name"] for r in itertools.islice(csv.DictReader(f), 16)]
    with (shared_data / "hm_sample" / "sample_articles_1686_with_desc.csv").open(
        encoding="utf-8"
    ) as f:
        descriptions = sorted(
            {r["detail_desc"] for r in csv.DictReader(f)}, key=lambda t: (-len(t.split()), t)
        )[:4]
    beyond_limit = " ".join(descriptions)  # About 400 word pieces: truncated at 256.
    texts = [*retail, *amazon, *instacart, *descriptions, beyond_limit, "  Artisan Baguette ", ""]
    assert len(texts) == 57
    assert len(set(texts)) == 57
    return texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_packaged_model_is_the_default(embedder_fp32):
    assert embedder_fp32.model_name == "all-MiniLM-L6-v2"
    assert embedder_fp32.model_path == default_model_path()
    assert embedder_fp32.dimension == 384
    assert embedder_fp32.device == "cpu"
    assert embedder_fp32.dtype == "float32"
    assert embedder_fp32.max_length == DEFAULT_MAX_LENGTH == 256
    assert isinstance(embedder_fp32, Embedder)


def test_float32_vectors_match_sentence_transformers(
    embedder_fp32, sentence_transformer, real_texts
):
    expected = sentence_transformer.encode(real_texts, normalize_embeddings=True)

    vectors = embedder_fp32.embed(real_texts)

    assert vectors.shape == (57, 384)
    assert vectors.dtype == np.float32
    # Row i is text i: each row is compared with the reference row of the same text.
    agreement = cosines(vectors, expected)
    assert agreement.min() >= 0.99999, agreement.min()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_bfloat16_vectors_match_sentence_transformers_float32(
    embedder_bf16, sentence_transformer, real_texts
):
    expected = sentence_transformer.encode(real_texts, normalize_embeddings=True)

    vectors = embedder_bf16.embed(real_texts)

    assert embedder_bf16.dtype == "bfloat16"
    assert vectors.shape == (57, 384)
    assert vectors.dtype == np.float32
    agreement = cosines(vectors, expected)
    assert agreement.min() >= AGREEMENT, agreement.min()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_auto_dtype_on_cpu_is_bfloat16_only_with_native_support():
    expected = "bfloat16" if cpu_supports_bf16() else "float32"

    assert resolve_dtype("auto", device="cpu", cpu_bf16_supported=cpu_supports_bf16()) == (expected)


def test_chunked_prefetched_small_batches_keep_order_and_agreement(
    sentence_transformer, real_texts
):
    # Small chunks, batches and budget force many chunks and batches through the background
    # tokenising thread (the GPU path's structure), so order restoration is exercised.
    embedder = TransformerEmbedder(
        device="cpu", dtype="float32", chunk_size=10, batch_size=3, token_budget=64, prefetch=True
    )
    calls = []
    expected = sentence_transformer.encode(real_texts, normalize_embeddings=True)

    vectors = embedder.embed(real_texts, progress=lambda done, total: calls.append((done, total)))

    assert cosines(vectors, expected).min() >= 0.99999
    assert calls == [(10, 57), (20, 57), (30, 57), (40, 57), (50, 57), (57, 57)]


def test_order_and_batch_composition_do_not_change_vectors(embedder_fp32):
    texts = [
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "Chocolate Sandwich Cookies",
        "HP 78 Tri-Color Printer Cartridge (C6578DN) Laser Printer Toner HP",
    ]

    forward = embedder_fp32.embed(texts)
    backward = embedder_fp32.embed(texts[::-1])
    alone = np.vstack([embedder_fp32.embed([text]) for text in texts])

    assert cosines(forward, backward[::-1]).min() >= 0.99999
    assert cosines(forward, alone).min() >= 0.99999


def test_empty_input_gives_an_empty_matrix(embedder_bf16):
    vectors = embedder_bf16.embed([])

    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_batch_size_override_gives_the_same_vectors(embedder_fp32, real_texts):
    default = embedder_fp32.embed(real_texts)

    small = embedder_fp32.embed(real_texts, batch_size=2)

    assert cosines(default, small).min() >= 0.99999


def test_semantic_neighbours_on_the_real_model(embedder_bf16):
    queries = embedder_bf16.embed(["printer ink cartridge", "candle holder"])
    products = embedder_bf16.embed(
        [
            "HP 78 Tri-Color Printer Cartridge (C6578DN) Laser Printer Toner HP",
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "Chocolate Sandwich Cookies",
        ]
    )

    similarity = queries @ products.T

    assert similarity[0, 0] > similarity[0, 1]
    assert int(np.argmax(similarity[0])) == 0
    assert int(np.argmax(similarity[1])) == 1


def test_single_string_is_refused(embedder_fp32):
    with pytest.raises(TypeError, match="texts: expected a sequence of strings, got a single"):
        embedder_fp32.embed("HP toner")


def test_non_string_item_is_refused_with_its_position(embedder_fp32):
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a string, got NoneType"):
        embedder_fp32.embed(["HP toner", None])


def test_bad_batch_size_is_refused(embedder_fp32):
    with pytest.raises(ValueError, match="batch_size: must be a positive integer, got 0"):
        embedder_fp32.embed(["HP toner"], batch_size=0)


def test_importing_the_ml_modules_does_not_import_torch():
    code = (
        "import sys, recommender.ml.embedding, recommender.ml.text; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


# Model directories that cannot be used --------------------------------------------------------


def test_missing_model_directory_is_named(tmp_path):
    missing = tmp_path / "no-such-model"

    with pytest.raises(FileNotFoundError, match=f"embedding model directory {missing} does not"):
        TransformerEmbedder(model_path=missing)


def test_model_directory_without_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path} has no config.json"):
        TransformerEmbedder(model_path=tmp_path)


def test_model_path_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"")

    with pytest.raises(FileNotFoundError, match=f"{file} is not a directory"):
        TransformerEmbedder(model_path=str(file))


def _sentence_transformers_dir(root: Path, *, module_types: list[str], pooling: dict) -> Path:
    """A model directory with sentence-transformers' module files (no weights needed: the
    pipeline is checked before anything is loaded)."""
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Dense": "2_Dense"}
    modules = [
        {
            "idx": i,
            "name": str(i),
            "path": paths[kind],
            "type": f"sentence_transformers.models.{kind}",
        }
        for i, kind in enumerate(module_types)
    ]
    (root / "config.json").write_text("{}")
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling").mkdir()
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return root


def test_cls_pooling_model_is_refused(tmp_path):
    path = _sentence_transformers_dir(
        tmp_path,
        module_types=["Transformer", "Pooling"],
        pooling={"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
    )

    with pytest.raises(ValueError, match=r"sets \['pooling_mode_cls_token'\]; only mean pooling"):
        TransformerEmbedder(model_path=path)


def test_model_with_a_dense_layer_is_refused(tmp_path):
    path = _sentence_transformers_dir(
        tmp_path,
        module_types=["Transformer", "Pooling", "Dense"],
        pooling={"pooling_mode_mean_tokens": True},
    )

    with pytest.raises(ValueError, match="uses 'sentence_transformers.models.Dense'; only"):
        TransformerEmbedder(model_path=path)


def test_bad_constructor_numbers_are_refused():
    with pytest.raises(ValueError, match="token_budget: must be a positive integer, got 0"):
        TransformerEmbedder(token_budget=0)


# Device and dtype resolution ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "cuda_available", "expected"),
    [
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("cpu", False, "cpu"),
        ("cuda", True, "cuda"),
        ("cuda:1", True, "cuda:1"),
        (" CUDA ", True, "cuda"),
    ],
)
def test_resolve_device(requested, cuda_available, expected):
    assert resolve_device(requested, cuda_available=cuda_available) == expected


@pytest.mark.parametrize("requested", ["gpu", "mps", "cuda:x", "", "cpu:0"])
def test_resolve_device_refuses_unknown_devices(requested):
    with pytest.raises(ValueError, match=f"unknown device '{requested}'; expected one of auto, "):
        resolve_device(requested, cuda_available=True)


@pytest.mark.parametrize("requested", ["cuda", "cuda:0"])
def test_resolve_device_refuses_cuda_without_cuda(requested):
    with pytest.raises(ValueError, match=f"device '{requested}' was requested but CUDA is not"):
        resolve_device(requested, cuda_available=False)


@pytest.mark.parametrize(
    ("requested", "device", "bf16", "expected"),
    [
        ("auto", "cuda", False, "bfloat16"),
        ("auto", "cuda:1", True, "bfloat16"),
        ("auto", "cpu", True, "bfloat16"),
        ("auto", "cpu", False, "float32"),
        ("float32", "cpu", True, "float32"),
        ("bfloat16", "cpu", False, "bfloat16"),
        ("float16", "cuda:0", False, "float16"),
    ],
)
def test_resolve_dtype(requested, device, bf16, expected):
    assert resolve_dtype(requested, device=device, cpu_bf16_supported=bf16) == expected


def test_resolve_dtype_auto_is_float16_on_gpus_without_bfloat16():
    assert (
        resolve_dtype("auto", device="cuda", cpu_bf16_supported=True, gpu_bf16_supported=False)
        == "float16"
    )


def test_resolve_dtype_refuses_unknown_and_cpu_float16():
    with pytest.raises(ValueError, match="unknown dtype 'int8'; expected one of auto, float32"):
        resolve_dtype("int8", device="cpu", cpu_bf16_supported=True)
    with pytest.raises(ValueError, match="dtype 'float16' is for GPUs"):
        resolve_dtype("float16", device="cpu", cpu_bf16_supported=True)


# Batching shared by the CPU and GPU paths ------------------------------------------------------


def test_plan_batches_sorts_longest_first_within_the_token_budget():
    lengths = [5, 12, 3, 12, 7, 3, 40]

    batches = plan_batches(lengths, max_batch_size=8, token_budget=30)

    # 40 exceeds the budget alone; 12 allows 2 texts; 7 allows 4 (7, 5, 3, 3).
    assert [b.tolist() for b in batches] == [[6], [1, 3], [4, 0, 2, 5]]


def test_plan_batches_caps_the_number_of_texts():
    batches = plan_batches([4] * 7, max_batch_size=3, token_budget=1000)

    assert [b.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_plan_batches_covers_every_position_once():
    lengths = np.random.default_rng(7).integers(1, 257, size=1000)

    batches = plan_batches(lengths, max_batch_size=64, token_budget=4096)

    positions = np.concatenate(batches)
    assert sorted(positions.tolist()) == list(range(1000))
    for batch in batches:
        assert len(batch) <= 64
        assert len(batch) * lengths[batch].max() <= 4096


def test_plan_batches_of_nothing():
    assert plan_batches([], max_batch_size=8, token_budget=100) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch_size": 0, "token_budget": 10}, "max_batch_size: must be at least 1, got 0"),
        ({"max_batch_size": 4, "token_budget": 0}, "token_budget: must be at least 1, got 0"),
    ],
)
def test_plan_batches_refuses_bad_limits(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_batches([3], **kwargs)


def test_pad_token_ids_pads_right_and_masks():
    input_ids, mask = pad_token_ids([[101, 7, 102], [101, 102], [101, 5, 6, 102]], pad_id=0)

    assert input_ids.tolist() == [[101, 7, 102, 0], [101, 102, 0, 0], [101, 5, 6, 102]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert input_ids.dtype == np.int64
    assert mask.dtype == np.int64


def test_pad_token_ids_rounds_up_to_a_multiple():
    input_ids, mask = pad_token_ids([[1, 2, 3], [4]], pad_id=9, pad_to_multiple_of=4)

    assert input_ids.tolist() == [[1, 2, 3, 9], [4, 9, 9, 9]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]


def test_mean_pool_ignores_padding_and_normalises():
    import torch

    hidden = torch.tensor(
        [[[3.0, 0.0], [1.0, 2.0], [100.0, 100.0]], [[0.0, 2.0], [0.0, 4.0], [0.0, 6.0]]],
        dtype=torch.bfloat16,
    )
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])

    pooled = mean_pool_normalize(hidden, mask)

    # Row 0: mean of (3, 0) and (1, 2) is (2, 1); the padded (100, 100) is ignored.
    assert pooled.dtype == torch.float32
    np.testing.assert_allclose(pooled.numpy(), [[2 / 5**0.5, 1 / 5**0.5], [0.0, 1.0]], rtol=1e-6)


# GPU ---------------------------------------------------------------------------------------


@pytest.mark.gpu  # Deselected by default; `pytest -m gpu` on a GPU machine.
def test_gpu_bfloat16_vectors_match_sentence_transformers(sentence_transformer, real_texts):
    # Chunks of 1,000 texts: the next chunk is tokenised into pinned memory while one runs.
    embedder = TransformerEmbedder(device="cuda", chunk_size=1000)
    expected = sentence_transformer.encode(real_texts, normalize_embeddings=True)

    vectors = embedder.embed(real_texts * 100)

    assert embedder.dtype == "bfloat16"
    assert embedder.prefetch is True
    assert vectors.shape == (5700, 384)
    assert cosines(vectors, np.tile(expected, (100, 1))).min() >= AGREEMENT


# HashingEmbedder -------------------------------------------------------------------------------


def test_hashing_embedder_is_deterministic_across_instances_and_processes():
    texts = ["red ceramic mug", "garden hose 20m"]
    code = (
        "from recommender.ml.embedding import HashingEmbedder; "
        "print(HashingEmbedder(dimension=8).embed(['red ceramic mug'])[0].round(6).tolist())"
    )

    first = HashingEmbedder(dimension=8).embed(texts)
    second = HashingEmbedder(dimension=8).embed(texts)
    other_process = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    np.testing.assert_array_equal(first, second)
    assert other_process.stdout.strip() == str(first[0].round(6).tolist())


def test_hashing_embedder_shape_dtype_and_norms():
    embedder = HashingEmbedder()

    vectors = embedder.embed(["red ceramic mug", "", "!!!", "Mug"])

    assert vectors.shape == (4, 64)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    # Texts without a word share the one fixed fallback vector.
    np.testing.assert_array_equal(vectors[1], vectors[2])
    assert embedder.model_name == "hashing-v1-64"
    assert embedder.dimension == 64
    assert embedder.device == "cpu"
    assert isinstance(embedder, Embedder)
    assert embedder.embed([]).shape == (0, 64)


def test_hashing_embedder_shared_words_are_more_similar():
    embedder = HashingEmbedder(dimension=256)
    query, shares_two, shares_one, unrelated = embedder.embed(
        ["red ceramic mug", "blue ceramic mug", "red garden hose", "chocolate sandwich cookies"]
    )

    assert query @ shares_two > query @ shares_one > query @ unrelated


def test_hashing_embedder_is_case_insensitive():
    upper, lower = HashingEmbedder().embed(["WHITE METAL LANTERN", "white metal lantern"])

    np.testing.assert_array_equal(upper, lower)


def test_hashing_embedder_reports_progress():
    calls = []

    HashingEmbedder().embed(["a"] * 5, batch_size=2, progress=lambda d, t: calls.append((d, t)))

    assert calls == [(2, 5), (4, 5), (5, 5)]


@pytest.mark.parametrize("dimension", [0, 1, -3, 2.0, True])
def test_hashing_embedder_refuses_bad_dimensions(dimension):
    with pytest.raises(ValueError, match="dimension: must be an integer of at least 2"):
        HashingEmbedder(dimension=dimension)


def test_hashing_embedder_refuses_a_single_string():
    with pytest.raises(TypeError, match="got a single string"):
        HashingEmbedder().embed("red mug")
