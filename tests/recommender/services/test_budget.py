"""Memory budgets of fits: estimated first, refused early with the setting named."""

import numpy as np
import pytest

from jobs.choices import BuildStatus
from recommender.ml.neighbours import ease_memory_bytes
from recommender.models import EngineBuild
from recommender.services import recommendations as service
from recommender.services.budget import (
    PROCESS_BASE,
    FitPlan,
    MemoryBudgetExceeded,
    MemoryEstimate,
    PeakMemory,
    fit_customers,
    fit_plan,
    index_build_estimate,
    parse_bytes,
    physical_memory,
    process_memory,
)

GIB = 2**30
BASE = PROCESS_BASE  # What a fresh worker holds: the plans below do not depend on this process.


def test_budget_sizes_parse_and_a_bad_one_names_the_setting():
    assert parse_bytes("8G") == 8 * GIB
    assert parse_bytes("512m") == 512 * 2**20
    assert parse_bytes("1.5GiB") == int(1.5 * GIB)
    assert parse_bytes("1048576") == 2**20
    assert parse_bytes("auto") == int(0.6 * physical_memory())
    with pytest.raises(ValueError, match=r"^RECSITE_FIT_MEMORY_BUDGET: expected a size such as"):
        parse_bytes("lots")
    with pytest.raises(ValueError, match=r"^RECSITE_FIT_MEMORY_BUDGET: .* got '0G'"):
        parse_bytes("0G")


def test_ease_is_planned_while_its_matrix_fits_the_budget_and_item_knn_beyond(settings):
    settings.RECSITE_EASE_MAX_ITEMS = 20_000
    small = fit_plan(
        items=4_000, events=400_000, dimension=384, neighbours=100, budget=8 * GIB, process=BASE
    )
    assert small.uses_ease
    assert small.estimate.parts["EASE matrix"] == ease_memory_bytes(4_000)

    # 20,000 products need a 1.6 GB matrix: not within 2 GB beside everything else.
    tight = fit_plan(
        items=20_000, events=1_000_000, dimension=384, neighbours=100, budget=2 * GIB, process=BASE
    )
    assert not tight.uses_ease
    assert "EASE matrix" not in tight.estimate.parts
    assert ease_memory_bytes(tight.ease_max_items) <= 2 * GIB - (sum(tight.estimate.parts.values()))

    # Above RECSITE_EASE_MAX_ITEMS, item-kNN whatever the budget (EASE takes O(n^3) time).
    large = fit_plan(
        items=50_000, events=1_000_000, dimension=384, neighbours=100, budget=64 * GIB, process=BASE
    )
    assert not large.uses_ease
    assert large.ease_max_items == 20_000


def test_an_estimate_over_the_budget_names_the_setting_the_size_and_the_biggest_parts():
    estimate = MemoryEstimate(
        what="Fitting the engine",
        parts={"process": PROCESS_BASE, "events": 6 * GIB, "product vectors": GIB // 2},
    )
    estimate.check(budget=7 * GIB)  # Within: nothing happens.
    with pytest.raises(MemoryBudgetExceeded) as caught:
        estimate.check(budget=4 * GIB)
    message = str(caught.value)
    assert message.startswith(
        "Fitting the engine needs about 6.9 GiB of memory (events 6.0 GiB, product vectors "
        "512.0 MiB, process 400.0 MiB), more than RECSITE_FIT_MEMORY_BUDGET allows (4.0 GiB)."
    )
    assert "the current artifacts keep serving" in message


def test_index_build_estimate_covers_the_vectors_read_and_the_graph():
    estimate = index_build_estimate(items=1_000_000, dimension=384, m=16)
    assert estimate.parts["vectors read"] == 1_000_000 * 384 * 4
    assert estimate.parts["hnswlib graph"] == 1_000_000 * (384 * 4 + 4 * 33 + 8 + 64)


@pytest.mark.django_db
def test_a_fit_over_the_budget_stops_before_reading_and_the_serving_build_stays(shop, settings):
    serving = service.serving_engine()
    settings.RECSITE_FIT_MEMORY_BUDGET = "64M"  # Less than the process itself is planned at.

    with pytest.raises(MemoryBudgetExceeded, match="more than RECSITE_FIT_MEMORY_BUDGET allows"):
        service.engine_build()

    failed = EngineBuild.objects.order_by("-pk").first()
    assert failed is not None
    assert failed.status == BuildStatus.FAILED
    assert failed.error.startswith("MemoryBudgetExceeded: Fitting the engine needs about ")
    assert failed.path == ""
    service.serving_engine_recheck()
    assert service.serving_engine().build_id == serving.build_id


@pytest.mark.django_db
def test_an_index_build_over_the_budget_stops_before_reading_the_vectors(shop, settings):
    from recommender.models import IndexBuild
    from recommender.services.index import vector_index_build

    settings.RECSITE_FIT_MEMORY_BUDGET = "64M"
    with pytest.raises(MemoryBudgetExceeded, match="^Building the vector index needs about"):
        vector_index_build()
    failed = IndexBuild.objects.order_by("-pk").first()
    assert failed is not None
    assert failed.status == BuildStatus.FAILED
    assert "RECSITE_FIT_MEMORY_BUDGET" in failed.error
    assert IndexBuild.objects.filter(status=BuildStatus.READY).count() == 1  # Still serving.


def test_the_plan_counts_what_the_process_already_holds():
    # given: the process holds 512 MiB more than a moment ago (pages touched)
    before = PeakMemory.current()
    assert before is not None
    held = np.ones(64 * 2**20, dtype=np.float64)

    # then: a plan made now counts them as the process's part
    after = process_memory()
    assert after >= before + 0.95 * held.nbytes
    plan = fit_plan(items=10, events=10, dimension=8, neighbours=5, budget=64 * GIB)
    assert plan.estimate.parts["process"] >= after
    assert (
        fit_plan(
            items=10, events=10, dimension=8, neighbours=5, budget=64 * GIB, process=3 * GIB
        ).estimate.parts["process"]
        == 3 * GIB
    )
    assert index_build_estimate(items=10, dimension=8, m=16).parts["process"] >= after
    del held


def test_the_plan_does_not_count_what_an_earlier_step_freed():
    # given: an earlier step held 512 MiB in blocks small enough for the C library's heap, and
    # freed them (with small objects still allocated after them, as a real step leaves)
    start = process_memory() and PeakMemory.current()  # Resident memory, freed pages trimmed.
    assert start is not None
    blocks = [np.ones(8192, dtype=np.float64) for _ in range(8192)]  # 64 KiB each
    pinned = [np.ones(10) for _ in range(100_000)]
    held = PeakMemory.current()
    assert held is not None
    assert held >= start + 500 * 2**20
    del blocks

    # when
    planned = process_memory()

    # then: what the fit will reuse is not planned as held (the process's own part is never
    # below PROCESS_BASE)
    resident = PeakMemory.current()
    assert resident is not None
    assert resident < start + 64 * 2**20
    assert planned == PROCESS_BASE or planned < start + 64 * 2**20
    del pinned


def _shop_plan(*, events: int) -> FitPlan:
    """A 100k-product shop's plan in a process holding 1 GiB."""
    return fit_plan(
        items=100_000, events=events, dimension=384, neighbours=100, budget=64 * GIB, process=GIB
    )


def test_a_second_fit_learns_from_every_customer_while_its_plan_fits_the_budget():
    plan = _shop_plan(events=5_000_000)
    assert fit_customers(plan, customers=100_000, budget=plan.estimate.total) == 100_000


def test_a_second_fit_over_the_budget_learns_from_the_share_of_customers_that_fits():
    # given: a plan 1 GiB over the budget, whose events part is 4 GiB
    plan = _shop_plan(events=50_000_000)
    events = plan.estimate.parts["events"]
    budget = plan.estimate.total - GIB

    # when
    fitting = fit_customers(plan, customers=1_000_000, budget=budget)

    # then: the customers whose events fit in what is left for them
    assert fitting == int(1_000_000 * (events - GIB) / events)
    assert fitting < 1_000_000


def test_a_second_fit_with_no_room_for_any_event_is_refused_naming_the_setting():
    plan = _shop_plan(events=50_000_000)
    with pytest.raises(MemoryBudgetExceeded, match="more than RECSITE_FIT_MEMORY_BUDGET allows"):
        fit_customers(plan, customers=1_000_000, budget=GIB)  # What the process holds already.
