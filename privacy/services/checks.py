"""The proof that a forgotten customer is gone: ``manage.py privacy_check ID`` and the purge
job's last step.

For each forget request of the id (found by its key, :func:`privacy.keys.customer_key`):

- every registered handler's ``check`` (rows of the customer's old row id, other apps' data);
- no live (READY or BUILDING) engine build or churn model made before the request, and no file
  left on disk of one retired (tuning samples beside an engine build included);

and, for the id itself, a scan of every file of the artifact store for the id as a whole token
(between delimiters of text: ``12346`` is not found inside ``0.123467`` or random bytes), and
of the job history and the audit log's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from jobs.choices import BuildStatus
from jobs.models import ArtifactBuild, Job
from jobs.services.artifact_store import FilesystemStore, artifact_store
from privacy.keys import shop_customer_keys
from privacy.models import AuditEntry, ForgetRequest
from privacy.registry import forget_handlers

from .forgetting import stale_churn_builds, stale_engine_builds

_CHUNK = 8 << 20


def _retired_files(model: type[ArtifactBuild], before: datetime) -> list[str]:
    left = []
    for path in (
        model._default_manager.filter(status=BuildStatus.RETIRED, started_at__lt=before)
        .exclude(path="")
        .values_list("path", flat=True)
    ):
        main = Path(path)
        if main.exists():
            left.append(str(main))
        if main.parent.is_dir():
            left += [str(p) for p in main.parent.glob(f"{main.stem}.tuning-*")]
    return left


def forget_request_check(request: ForgetRequest) -> list[str]:
    """What still holds the customer of ``request``; empty when nothing does."""
    from churn.models import ChurnModelBuild
    from recommender.models import EngineBuild

    found: list[str] = []
    for handler in forget_handlers():
        found += [f"{handler.name}: {item}" for item in handler.check(request)]
    before = request.requested_at
    found += [f"engine build #{pk} was fitted before the request" for pk in
              stale_engine_builds(before)]  # fmt: skip
    cleared = set(request.report.get("churn_builds_cleared", []))
    found += [f"churn model build #{pk} was trained before the request" for pk in
              stale_churn_builds(before, kept=cleared)]  # fmt: skip
    if isinstance(artifact_store(), FilesystemStore):
        for model in (EngineBuild, ChurnModelBuild):
            found += [f"file of a retired build left: {p}" for p in _retired_files(model, before)]
    return found


def _roots() -> list[Path]:
    store = artifact_store()
    roots = [store.root] if isinstance(store, FilesystemStore) else []
    roots.append(Path(settings.RECSITE_INDEX_DIR))  # S3: this host's cache of builds is here.
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and not any(root.resolve() == u.resolve() for u in unique):
            unique.append(root)
    return unique


def _files() -> Iterator[Path]:
    for root in _roots():
        yield from (p for p in sorted(root.rglob("*")) if p.is_file())


# What may stand beside an id where text names it (JSON, CSV, logs, key=value): so that a short
# id is neither found inside a longer token ("12346" in "0.123467") nor in random bytes.
_DELIMITERS = rb"\t\n\r \"',:;=\[\]{}()/"


def _token(value: str) -> re.Pattern[bytes]:
    body = re.escape(value.encode())
    return re.compile(rb"(?:^|(?<=[" + _DELIMITERS + rb"]))" + body + rb"(?=[" + _DELIMITERS
                      + rb"]|$)")  # fmt: skip


def files_containing(value: str) -> list[str]:
    """Every artifact file holding ``value`` as a whole token."""
    pattern, width = _token(value), len(value.encode())
    hits = []
    for path in _files():
        with path.open("rb") as handle:
            tail = b""
            while chunk := handle.read(_CHUNK):
                if pattern.search(tail + chunk):
                    hits.append(str(path))
                    break
                tail = chunk[-(width + 1) :]
    return hits


def _text_holding(value: str) -> list[str]:
    """Jobs and audit entries whose text holds ``value`` as a whole token (the database finds
    the candidates by substring; a timestamp's digits may hold a short numeric id)."""
    pattern = _token(value)
    found = []
    jobs = Job.objects.annotate(
        p=Cast("params", TextField()), c=Cast("counts", TextField())
    ).filter(Q(p__contains=value) | Q(c__contains=value) | Q(error__contains=value))
    for pk, *texts in jobs.values_list("pk", "p", "c", "error"):
        if any(pattern.search(t.encode()) for t in texts if t):
            found.append(f"job #{pk} names it")
    audit = AuditEntry.objects.annotate(d=Cast("detail", TextField())).filter(
        Q(d__contains=value) | Q(target__contains=value)
    )
    for pk, *texts in audit.values_list("pk", "d", "target"):
        if any(pattern.search(t.encode()) for t in texts if t):
            found.append(f"audit entry #{pk} names it")
    return found


@dataclass
class CheckReport:
    external_id: str
    requests: list[ForgetRequest] = field(default_factory=list)
    customer_exists: bool = False
    findings: list[str] = field(default_factory=list)
    files_scanned: int = 0

    @property
    def clean(self) -> bool:
        return bool(self.requests) and not self.findings


def customer_check(*, external_id: str) -> CheckReport:
    """Everything that still holds the shop's customer ``external_id``."""
    from recommender.models import Customer
    from recommender.pseudonyms import customer_id_stored

    report = CheckReport(external_id=external_id)
    report.requests = list(
        ForgetRequest.objects.filter(customer_key__in=shop_customer_keys(external_id)).order_by(
            "pk"
        )
    )
    stored = customer_id_stored(external_id)
    customer = Customer.objects.filter(external_id=stored).first()
    newest = max((r.requested_at for r in report.requests), default=None)
    if customer is not None and (newest is None or customer.created_at <= newest):
        report.customer_exists = True
        report.findings.append("the customer exists (never forgotten)")
    for request in report.requests:
        report.findings += [f"request #{request.pk}: {f}" for f in forget_request_check(request)]
    names = list(dict.fromkeys([external_id, stored]))  # The shop's id and its pseudonym.
    if customer is None or report.requests:
        for name in names:
            report.findings += _text_holding(name)
    report.files_scanned = sum(1 for _ in _files())
    for name in names:
        report.findings += [f"artifact file holds the id: {p}" for p in files_containing(name)]
    return report
