"""Experiments API (``/api/v1/experiments/``): list, create, read, change, start, stop, copy,
promote a variant's configuration, refresh and read results.

Reading needs the 'read' scope (a shop may show its analysts the results); every change is for
admins. Types and ranges are checked here (400); what the values mean (shares summing to 100,
a configuration version that exists, an end after the start, a unique name) by the service
(422, naming the field); a change the experiment's state forbids (a running experiment's
variants, starting a second experiment on the same lists) is a 409 naming the field.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Scope
from accounts.selectors import request_scopes
from experiments import selectors, services, simulation
from experiments.models import Baseline, Experiment, ExperimentJobKind, ExperimentList, Metric
from experiments.tasks import experiment_replay_run, experiment_results_run
from jobs.api.serializers import JobOutputSerializer
from jobs.services.runs import job_start
from recsite.api import serializers as shared
from recsite.api.errors import RULE, InvalidRequest, error_entry
from recsite.api.fields import StrictInputSerializer, TextField, TimestampField
from recsite.api.lookups import int_or_404
from recsite.api.schema import refused_by_rule

_ID = OpenApiParameter("experiment_id", int, OpenApiParameter.PATH, description="Experiment id.")
_NOT_FOUND = OpenApiResponse(shared.DetailOutputSerializer, description="Unknown experiment id.")
_MEANING = refused_by_rule(
    "The fields have the documented types, but the experiment they describe is refused: shares "
    "that do not sum to 100, a configuration version that does not exist, an end before the "
    "start, a name already used, a variant named twice, a baseline with a configuration."
)
_CONFLICT = OpenApiResponse(
    shared.ErrorOutputSerializer,
    description="The experiment's state forbids it: a running or stopped experiment's "
    "variants, lists, shares or metrics cannot change (stop it and copy it); only a draft "
    "starts, only a running experiment stops; another running experiment covers the lists.",
)


class CanRunExperiments(BasePermission):
    """Reading needs the 'read' scope; every change needs the 'admin' scope."""

    message = "Changing experiments is for admins; the 'read' scope may only read them."

    def has_permission(self, request: Request, view: Any) -> bool:
        scopes = request_scopes(request)
        return (Scope.READ if request.method in SAFE_METHODS else Scope.ADMIN) in scopes


# Serializers --------------------------------------------------------------------------------


class VariantSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "ExperimentVariant"

    name = TextField(max_length=64)
    share = serializers.IntegerField(
        min_value=1, max_value=100, help_text="Percent of visitors; the shares sum to 100 (422)."
    )
    config_version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2_147_483_647,
        help_text="A recommendation configuration version (422 when none has it); null or "
        "absent: the active configuration.",
    )
    baseline = serializers.ChoiceField(
        choices=Baseline.choices,
        required=False,
        default="",
        help_text="'popularity': the popularity source alone; 'none': no recommendations "
        "(empty lists, still counted). Not with a config_version (422).",
    )
    rules = serializers.BooleanField(
        required=False, default=True, help_text="Apply the merchandising rules."
    )


class GuardrailSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "ExperimentGuardrail"

    metric = serializers.ChoiceField(choices=Metric.choices)
    max_drop_pct = serializers.FloatField(
        min_value=0, max_value=100, help_text="A treatment may lower the metric by this much."
    )


class VariantOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentVariantOutput"

    name = serializers.CharField()
    share = serializers.IntegerField()
    config_version = serializers.IntegerField(allow_null=True)
    baseline = serializers.CharField()
    rules = serializers.BooleanField()


class GuardrailOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentGuardrailOutput"

    metric = serializers.CharField()
    max_drop_pct = serializers.FloatField()


class ExperimentOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentOutput"

    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    state = serializers.CharField(help_text="draft, running or stopped.")
    lists = serializers.ListField(child=serializers.CharField())
    variants = VariantOutputSerializer(many=True, source="variants.all")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)
    primary_metric = serializers.CharField()
    guardrails = GuardrailOutputSerializer(many=True)
    horizon_visitors = serializers.IntegerField(
        help_text="Fixed horizon: visitors per variant before the decision is read."
    )
    copied_from = serializers.IntegerField(source="copied_from_id", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    results_at = serializers.DateTimeField(
        allow_null=True, help_text="When the results were last computed."
    )
    replay = serializers.DictField(
        allow_null=True,
        help_text="Null for a live experiment. A replay of past traffic (simulated, never "
        "started): its period (from, days), list length (k), visit gap (gap_minutes), status "
        "(queued, running, done, failed) and, once done, what it served and recorded.",
    )


class ExperimentInputSerializer(StrictInputSerializer):
    """Types and ranges; what the experiment means is checked by the service (422)."""

    class Meta:
        ref_name = "ExperimentInput"

    name = TextField(max_length=200)
    description = TextField(required=False, allow_blank=True, max_length=5000)
    lists = serializers.ListField(
        child=serializers.ChoiceField(choices=ExperimentList.choices),
        min_length=1,
        max_length=len(ExperimentList.values),
        help_text="The lists covered. Only requests that name their visitor take part: every "
        "customer list, session lists with a session_id, similar, bought-together and trending "
        "lists with a customer_id or session_id query parameter.",
    )
    variants = serializers.ListField(
        child=VariantSerializer(),
        min_length=2,
        max_length=services.MAX_VARIANTS,
        help_text="The control first, then the treatments.",
    )
    starts_at = TimestampField(help_text="Visitors are assigned from here, once started.")
    ends_at = TimestampField(
        required=False, allow_null=True, help_text="After starts_at (422 otherwise)."
    )
    primary_metric = serializers.ChoiceField(choices=Metric.choices, required=False)
    guardrails = serializers.ListField(
        child=GuardrailSerializer(), required=False, max_length=len(Metric.values)
    )
    horizon_visitors = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=1_000_000_000,
        help_text="Fixed horizon: visitors per variant before the decision is read "
        "(default 1,000).",
    )


class CopyInputSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "ExperimentCopyInput"

    name = TextField(required=False, max_length=200, help_text="Default: '<name> (copy)'.")


class ReplayInputSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "ExperimentReplayInput"

    since = serializers.DateField(
        help_text="First day replayed (the shop's time zone); the engine learns from the events "
        "before it (422 when there are none, or none from that day on)."
    )
    days = serializers.IntegerField(
        min_value=1, max_value=simulation.MAX_DAYS, help_text="Days replayed from since."
    )
    k = serializers.IntegerField(
        required=False, min_value=1, max_value=simulation.MAX_K, help_text="Products per list."
    )
    gap_minutes = serializers.FloatField(
        required=False,
        min_value=0.1,
        max_value=1440,
        help_text="A visit ends after this long without an event (default 30).",
    )


class ReplayOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentReplayOutput"

    experiment = ExperimentOutputSerializer(help_text="The replay, a new experiment.")
    job = JobOutputSerializer(help_text="The replay job.")


class PromoteInputSerializer(StrictInputSerializer):
    class Meta:
        ref_name = "ExperimentPromoteInput"

    variant = TextField(max_length=64)


class PromoteOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentPromoteOutput"

    config_version = serializers.IntegerField(help_text="The new active configuration version.")


class EstimateSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentEstimate"

    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95% interval, lower bound.")
    high = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(
        allow_null=True, help_text="Relative lift against the control (0.041 is +4.1%)."
    )
    lift_low = serializers.FloatField(allow_null=True)
    lift_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(
        allow_null=True, help_text="Two-sided z-test of the difference with the control."
    )


class VariantResultSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentVariantResult"

    name = serializers.CharField()
    share = serializers.IntegerField()
    is_control = serializers.BooleanField()
    visitors = serializers.IntegerField()
    impressions = serializers.IntegerField(help_text="Served lists.")
    clicks = serializers.IntegerField()
    add_to_carts = serializers.IntegerField()
    purchases = serializers.IntegerField()
    revenue = serializers.FloatField()
    metrics = serializers.DictField(
        child=EstimateSerializer(),
        help_text="Per metric (ctr, add_to_cart_rate, conversion, revenue_per_mille, "
        "coverage): the ratio with its per-visitor clustered 95% interval, and the lift.",
    )


class SrmSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentSrm"

    chi2 = serializers.FloatField()
    p_value = serializers.FloatField()
    flagged = serializers.BooleanField(help_text="p < 0.001: the assignment looks broken.")


class GuardrailResultSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentGuardrailResult"

    variant = serializers.CharField()
    metric = serializers.CharField()
    max_drop_pct = serializers.FloatField()
    state = serializers.CharField(help_text="ok, at risk, breached or unknown.")


class ResultsOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ExperimentResultsOutput"

    experiment = serializers.IntegerField()
    results_at = serializers.DateTimeField(allow_null=True)
    primary_metric = serializers.CharField()
    decision = serializers.CharField()
    horizon_reached = serializers.BooleanField()
    srm = SrmSerializer()
    variants = VariantResultSerializer(many=True)
    guardrails = GuardrailResultSerializer(many=True)
    attribution = serializers.DictField(
        help_text="What the last run counted: events attributed by an explicit "
        "recommendation_id, by the last-touch window, unattributed, unknown ids; the windows."
    )


def results_payload(results: selectors.ExperimentResults) -> dict[str, Any]:
    def metric(m: selectors.MetricResult) -> dict[str, Any]:
        c = m.comparison
        return {
            "value": m.estimate.value,
            "low": m.estimate.low,
            "high": m.estimate.high,
            "lift": c.lift if c else None,
            "lift_low": c.low if c else None,
            "lift_high": c.high if c else None,
            "p_value": c.p_value if c else None,
        }

    return {
        "experiment": results.experiment.pk,
        "results_at": results.experiment.results_at,
        "primary_metric": results.experiment.primary_metric,
        "decision": results.decision,
        "horizon_reached": results.horizon_reached,
        "srm": {
            "chi2": results.srm.chi2,
            "p_value": results.srm.p_value,
            "flagged": results.srm.flagged,
        },
        "variants": [
            {
                "name": v.name,
                "share": v.share,
                "is_control": v.is_control,
                "visitors": v.visitors,
                "impressions": v.impressions,
                "clicks": v.clicks,
                "add_to_carts": v.carts,
                "purchases": v.purchases,
                "revenue": v.revenue,
                "metrics": {name: metric(m) for name, m in v.metrics.items()},
            }
            for v in results.variants
        ],
        "guardrails": [
            {
                "variant": g.variant,
                "metric": g.metric,
                "max_drop_pct": g.max_drop_pct,
                "state": g.state,
            }
            for g in results.guardrails
        ],
        "attribution": results.attribution,
    }


# Helpers ------------------------------------------------------------------------------------


def _experiment_or_404(experiment_id: int) -> Experiment:
    experiment = selectors.experiment_get(pk=int_or_404(experiment_id, "Experiment"))
    if experiment is None:
        raise NotFound(f"Experiment {experiment_id} not found.")
    return experiment


class Conflict(InvalidRequest):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _refused(exc: services.ExperimentError) -> Exception:
    if exc.conflict:
        return Conflict(
            detail=f"{exc.field}: {exc.message}",
            errors=[error_entry(field=exc.field, message=exc.message)],
        )
    return ValidationError({exc.field: [ErrorDetail(exc.message, code=RULE)]})


def _variant_specs(raw: list[dict[str, Any]]) -> list[services.VariantSpec]:
    return [
        services.VariantSpec(
            name=v["name"],
            share=v["share"],
            config_version=v.get("config_version"),
            baseline=v.get("baseline", ""),
            rules=v.get("rules", True),
        )
        for v in raw
    ]


def _output(experiment: Experiment, code: int = status.HTTP_200_OK) -> Response:
    return Response(ExperimentOutputSerializer(experiment).data, status=code)


# Views --------------------------------------------------------------------------------------


@extend_schema(tags=["experiments"])
class ExperimentListCreateApi(GenericAPIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]
    serializer_class = ExperimentOutputSerializer

    def get_queryset(self) -> Any:
        return selectors.experiment_list()

    @extend_schema(
        operation_id="experiments_list",
        summary="List experiments",
        responses={200: ExperimentOutputSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ExperimentOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="experiments_create",
        summary="Create a draft experiment",
        request=ExperimentInputSerializer,
        responses={201: ExperimentOutputSerializer, 422: _MEANING},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ExperimentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        spec = services.ExperimentSpec(
            name=data["name"],
            lists=list(data["lists"]),
            variants=_variant_specs(data["variants"]),
            starts_at=data["starts_at"],
            ends_at=data.get("ends_at"),
            primary_metric=data.get("primary_metric", Metric.CTR),
            guardrails=[dict(g) for g in data.get("guardrails", [])],
            horizon_visitors=data.get("horizon_visitors", 1000),
            description=data.get("description", ""),
        )
        try:
            experiment = services.experiment_create(spec=spec, created_by=request.user)
        except services.ExperimentError as exc:
            raise _refused(exc) from None
        fresh = selectors.experiment_get(pk=experiment.pk)
        assert fresh is not None
        return _output(fresh, status.HTTP_201_CREATED)


@extend_schema(tags=["experiments"], parameters=[_ID])
class ExperimentDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @extend_schema(
        operation_id="experiments_retrieve",
        summary="An experiment",
        responses={200: ExperimentOutputSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        return _output(_experiment_or_404(experiment_id))

    @extend_schema(
        operation_id="experiments_partial_update",
        summary="Change some fields of an experiment",
        description="A draft changes anything; a running or stopped experiment only its name, "
        "description and end (409 for any other field: stop it and copy it).",
        request=ExperimentInputSerializer,
        responses={
            200: ExperimentOutputSerializer, 404: _NOT_FOUND, 409: _CONFLICT, 422: _MEANING,
        },
    )  # fmt: skip
    def patch(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        body = ExperimentInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        # A partial change is partial at the top only: each variant and guardrail is whole.
        for name, item in (("variants", VariantSerializer), ("guardrails", GuardrailSerializer)):
            if name in changes:
                whole = item(data=request.data[name], many=True)
                if not whole.is_valid():
                    raise ValidationError({name: whole.errors})
                changes[name] = [dict(v) for v in whole.validated_data]
        if "variants" in changes:
            changes["variants"] = _variant_specs(changes["variants"])
        if "lists" in changes:
            changes["lists"] = list(changes["lists"])
        try:
            experiment = services.experiment_update(experiment=experiment, changes=changes)
        except services.ExperimentError as exc:
            raise _refused(exc) from None
        return _output(experiment)


def _action(operation_id: str, summary: str, *, request: Any = None, created: bool = False) -> Any:
    responses: dict[int, Any] = {
        (201 if created else 200): ExperimentOutputSerializer,
        404: _NOT_FOUND,
        409: _CONFLICT,
    }
    if request is not None:  # Only a body can hold a refused value.
        responses[422] = _MEANING
    return extend_schema(
        tags=["experiments"],
        operation_id=operation_id,
        summary=summary,
        parameters=[_ID],
        request=request,
        responses=responses,
    )


class ExperimentStartApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @_action("experiments_start", "Start a draft experiment")
    def post(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        try:
            return _output(services.experiment_start(experiment=experiment))
        except services.ExperimentError as exc:
            raise _refused(exc) from None


class ExperimentStopApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @_action("experiments_stop", "Stop a running experiment")
    def post(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        try:
            return _output(services.experiment_stop(experiment=experiment))
        except services.ExperimentError as exc:
            raise _refused(exc) from None


class ExperimentCopyApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @_action(
        "experiments_copy", "Copy an experiment as a new draft", request=CopyInputSerializer,
        created=True,
    )  # fmt: skip
    def post(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        body = CopyInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            copy = services.experiment_copy(
                experiment=experiment,
                name=body.validated_data.get("name"),
                created_by=request.user,
            )
        except services.ExperimentError as exc:
            raise _refused(exc) from None
        fresh = selectors.experiment_get(pk=copy.pk)
        assert fresh is not None
        return _output(fresh, status.HTTP_201_CREATED)


class ExperimentPromoteApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @extend_schema(
        tags=["experiments"],
        operation_id="experiments_promote",
        summary="Make a variant's configuration the active one",
        parameters=[_ID],
        request=PromoteInputSerializer,
        responses={
            200: PromoteOutputSerializer,
            404: _NOT_FOUND,
            422: refused_by_rule("No such variant, or it serves no configuration version."),
        },
    )
    def post(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        body = PromoteInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user if isinstance(request.user, User) else None
        try:
            row = services.experiment_promote(
                experiment=experiment,
                variant=body.validated_data["variant"],
                created_by=cast(User | None, user),
            )
        except services.ExperimentError as exc:
            raise _refused(exc) from None
        return Response({"config_version": row.version})


class ExperimentResultsApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @extend_schema(
        tags=["experiments"],
        operation_id="experiments_results",
        summary="Per-variant results of an experiment",
        description="Computed from the last attribution run's aggregates (results_at); "
        "POST .../refresh or the scheduled job updates them.",
        parameters=[_ID],
        responses={200: ResultsOutputSerializer, 404: _NOT_FOUND},
    )
    def get(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        results = selectors.experiment_results(experiment=experiment, daily=False)
        return Response(ResultsOutputSerializer(results_payload(results)).data)


class ExperimentRefreshApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @extend_schema(
        tags=["experiments"],
        operation_id="experiments_refresh",
        summary="Attribute events and recompute an experiment's results (a job)",
        parameters=[_ID],
        request=None,
        responses={202: JobOutputSerializer, 404: _NOT_FOUND, 409: _CONFLICT},
    )
    def post(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        try:
            services.experiment_refresh_check(experiment=experiment)
        except services.ExperimentError as exc:
            raise _refused(exc) from None
        job = job_start(
            kind=ExperimentJobKind.EXPERIMENT_RESULTS,
            task=experiment_results_run,
            params={"experiment": experiment.pk},
            triggered_by=request.user,
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExperimentReplayApi(APIView):
    permission_classes = [IsAuthenticated, CanRunExperiments]

    @extend_schema(
        tags=["experiments"],
        operation_id="experiments_replay",
        summary="Replay past traffic through an experiment (a job)",
        description="Creates a replay: a new experiment with this one's variants, shares and "
        "assignment over the days replayed, never started, and a job that fits the engine on "
        "the events before 'since', serves each replayed visit its list from the variant the "
        "experiment assigns, and records the listed products the customer really touched "
        "(docs/experiments.md, 'Replay'). The shop's own data is only read.",
        parameters=[_ID],
        request=ReplayInputSerializer,
        responses={
            202: ReplayOutputSerializer,
            404: _NOT_FOUND,
            409: _CONFLICT,
            422: refused_by_rule(
                "The data cannot replay it: no event before 'since' to learn from, none from "
                "'since' on, or the experiment does not cover the customer list."
            ),
        },
    )
    def post(self, request: Request, experiment_id: int, **kwargs: Any) -> Response:
        experiment = _experiment_or_404(experiment_id)
        body = ReplayInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        plan = simulation.ReplayPlan(
            since=data["since"],
            days=data["days"],
            k=data.get("k", simulation.DEFAULT_K),
            gap_minutes=data.get("gap_minutes", simulation.DEFAULT_GAP_SECONDS / 60),
        )
        try:
            replay = simulation.experiment_replay_create(
                plan=plan, source=experiment, created_by=request.user
            )
        except services.ExperimentError as exc:
            raise _refused(_api_field(exc)) from None
        job = job_start(
            kind=ExperimentJobKind.EXPERIMENT_REPLAY,
            task=experiment_replay_run,
            params={"experiment": replay.pk},
            triggered_by=request.user,
        )
        return Response(
            {
                "experiment": ExperimentOutputSerializer(replay).data,
                "job": JobOutputSerializer(job).data,
            },
            status=status.HTTP_202_ACCEPTED,
        )


def _api_field(exc: services.ExperimentError) -> services.ExperimentError:
    """The service names the replay's first day ``from`` (the command's option); the API's
    field is ``since``."""
    if exc.field == "from":
        return services.ExperimentError("since", exc.message, conflict=exc.conflict)
    return exc
