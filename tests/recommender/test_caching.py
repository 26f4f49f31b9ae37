"""The cached-reload helper behind the token, merchandising-rule and serving caches."""

import pytest

from recommender import caching
from recommender.caching import Reloading


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(caching.time, "monotonic", clock)
    return clock


class Loads:
    """A reload that records what it was given and answers from a list."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.given: list[str | None] = []

    def __call__(self, held: str | None) -> str | None:
        self.given.append(held)
        return self.answers.pop(0)


def test_a_value_is_reloaded_only_after_the_seconds_pass(clock: Clock) -> None:
    cache: Reloading[str, str] = Reloading(lambda: 5.0)
    loads = Loads("v1", "v2")

    assert cache.get("k", loads) == "v1"
    clock.now += 4.9
    assert cache.get("k", loads) == "v1"
    clock.now += 0.2
    assert cache.get("k", loads) == "v2"
    assert loads.given == [None, "v1"]


def test_the_seconds_are_read_at_every_call(clock: Clock) -> None:
    seconds = [60.0]
    cache: Reloading[str, str] = Reloading(lambda: seconds[0])
    loads = Loads("v1", "v2")
    cache.get("k", loads)
    clock.now += 10

    seconds[0] = 5.0

    assert cache.get("k", loads) == "v2"


def test_none_from_the_reload_forgets_the_key(clock: Clock) -> None:
    cache: Reloading[str, str] = Reloading(lambda: 60.0)
    loads = Loads("v1", None, "v3")
    cache.get("k", loads)
    cache.recheck()

    assert cache.get("k", loads) is None
    assert cache.held("k") is None
    assert cache.get("k", loads) == "v3"
    assert loads.given == [None, "v1", None]


def test_a_failed_reload_keeps_the_held_value_due_for_a_check(clock: Clock) -> None:
    cache: Reloading[str, str] = Reloading(lambda: 5.0)
    cache.get("k", lambda _: "v1")
    clock.now += 6

    def broken(_: str | None) -> str:
        raise OSError("unreadable")

    with pytest.raises(OSError, match="unreadable"):
        cache.get("k", broken)
    assert cache.held("k") == "v1"
    assert cache.fresh("k") is None
    assert cache.get("k", lambda held: f"{held}+") == "v1+"


def test_recheck_keeps_the_values_for_the_next_reload(clock: Clock) -> None:
    cache: Reloading[str, str] = Reloading(lambda: 60.0)
    cache.get("a", lambda _: "a1")
    cache.get("b", lambda _: "b1")

    cache.recheck()

    assert cache.fresh("a") is None
    assert cache.get("a", lambda held: f"{held}>a2") == "a1>a2"
    assert cache.get("b", lambda held: f"{held}>b2") == "b1>b2"


def test_a_full_cache_forgets_the_others_when_a_new_key_comes(clock: Clock) -> None:
    cache: Reloading[str, str] = Reloading(lambda: 60.0, max_entries=2)
    cache.get("a", lambda _: "a")
    cache.get("b", lambda _: "b")
    cache.recheck()
    cache.get("b", lambda _: "b2")  # A known key does not count as new.
    assert cache.held("a") == "a"

    cache.get("c", lambda _: "c")

    assert (cache.held("a"), cache.held("b"), cache.held("c")) == (None, None, "c")


def test_forget_drops_one_key_or_all_and_runs_then_under_the_lock(clock: Clock) -> None:
    cache: Reloading[str, str] = Reloading(lambda: 60.0)
    cache.get("a", lambda _: "a")
    cache.get("b", lambda _: "b")
    ran: list[bool] = []

    cache.forget("a")
    assert (cache.held("a"), cache.held("b")) == (None, "b")
    cache.forget(then=lambda: ran.append(cache._lock.locked()))

    assert cache.held("b") is None
    assert ran == [True]


# AsOf: values read as of a request's clock ------------------------------------------------


def test_as_of_serves_clocks_from_its_read_to_seconds_later_only() -> None:
    cache: caching.AsOf[str, str] = caching.AsOf(lambda: 30.0, max_entries=10)
    cache.put("k", "v", 1000.0)
    assert [cache.get("k", now) for now in (999.9, 1000.0, 1030.0, 1030.1)] == [
        None,
        "v",
        "v",
        None,
    ]
    assert cache.get_many(["k", "other"], 1010.0) == ({"k": "v"}, ["other"])
    assert cache.get_many(["k"], 1040.0) == ({}, ["k"])


def test_as_of_forgets_every_key_when_full_and_holds_nothing_when_off() -> None:
    seconds = [30.0]
    cache: caching.AsOf[int, str] = caching.AsOf(lambda: seconds[0], max_entries=2)
    cache.put(1, "a", 0.0)
    cache.put(2, "b", 0.0)
    cache.put(2, "b2", 1.0)  # A held key: replaced, nothing forgotten.
    assert (len(cache), cache.get(1, 1.0), cache.get(2, 1.0)) == (2, "a", "b2")
    cache.put(3, "c", 1.0)  # A third key: the others go.
    assert (len(cache), cache.get(1, 1.0), cache.get(3, 1.0)) == (1, None, "c")
    seconds[0] = 0.0
    assert not cache.enabled()
    cache.put(4, "d", 1.0)
    assert (len(cache), cache.get(3, 1.0), cache.get(4, 1.0)) == (1, None, None)
    cache.forget()
    assert len(cache) == 0
