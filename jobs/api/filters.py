"""Query filters of the job history."""

import django_filters

from jobs.choices import JobState
from jobs.models import Job
from jobs.registry import job_kind_choices


class JobFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=job_kind_choices())
    state = django_filters.ChoiceFilter(choices=JobState.choices)

    class Meta:
        model = Job
        fields = ["kind", "state"]
