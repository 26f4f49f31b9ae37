"""``manage.py rollback_index [BUILD_ID]``: serve an earlier vector index build again."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.selectors import build_get, build_latest_ready, build_previous_ready
from recommender.models import IndexBuild
from recommender.services.index import index_build_rollback


class Command(BaseCommand):
    help = (
        "Serve an earlier READY vector index build again: the one given, or by default the one "
        "published before the build that serves now. Builds beyond RECSITE_INDEX_KEEP are "
        "retired (their files removed) and cannot be restored. Serving processes switch within "
        "RECSITE_INDEX_REFRESH_SECONDS, without a restart."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "build_id", nargs="?", type=int, help="The index build to serve (default: previous)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        serving = build_latest_ready(IndexBuild)
        build_id = options["build_id"]
        if build_id is None:
            build = build_previous_ready(IndexBuild)
            if build is None:
                raise CommandError(
                    "no earlier READY index build to roll back to "
                    f"(RECSITE_INDEX_KEEP={settings.RECSITE_INDEX_KEEP} are kept)"
                )
        else:
            build = build_get(IndexBuild, pk=build_id)
            if build is None:
                raise CommandError(f"index build {build_id} not found")
        try:
            index_build_rollback(build=build)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        was = f" (was build {serving.pk})" if serving is not None else ""
        self.stdout.write(
            f"Index build {build.pk} ({build.item_count} items, {build.model_name}) serves "
            f"again{was}."
        )
