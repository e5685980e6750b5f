"""The coordinator's shared limits on a fake clock: pacing across shards, places in flight,
pauses, corrections from x-ratelimit-remaining-*, a restarted shard's places and counts."""

from __future__ import annotations

import itertools
import math

import pytest

from compare.distributed.coordinator import Admit, Coordinator, Done, Exchange, Quota


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admits(shard: int, n: int, dep: str = "d", start: int = 0, tokens: int = 0) -> Exchange:
    return Exchange(shard, admits=[Admit(start + i, dep, tokens) for i in range(n)])


def test_requests_per_minute_hold_across_shards_as_one_runner() -> None:
    clock = Clock()
    co = Coordinator({"d": Quota(requests_per_minute=600)}, clock=clock)
    starts = []
    for shard in range(4):  # four shards ask for 10 sends each at the same moment
        starts += [g.delay_s for g in co.exchange(_admits(shard, 10)).grants]
    assert len(starts) == 40
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.1)  # 600/min = one every 0.1 s, whoever asks
    # and never more than the 10 s window's quota (100) within any window
    assert starts[-1] == pytest.approx(3.9)


def test_tokens_per_minute_window_and_refund() -> None:
    clock = Clock()
    co = Coordinator({"d": Quota(tokens_per_minute=600)}, clock=clock)  # 100 tokens / 10 s
    first = co.exchange(_admits(0, 2, tokens=50)).grants
    assert [g.delay_s for g in first] == [0.0, 0.0]
    late = co.exchange(_admits(1, 1, start=10, tokens=50)).grants[0]
    assert late.delay_s == pytest.approx(10.1)  # after the first booking leaves the window
    # A request that used 40 fewer tokens than booked gives them back: the next fits at once.
    co2 = Coordinator({"d": Quota(tokens_per_minute=600)}, clock=clock)
    g = co2.exchange(_admits(0, 2, tokens=50)).grants
    co2.exchange(Exchange(0, dones=[Done(g[0].id, "d", token_refund=40)]))
    assert co2.exchange(_admits(1, 1, start=10, tokens=40)).grants[0].delay_s == 0.0


def test_places_in_flight_are_shared_and_granted_first_come_first_served() -> None:
    co = Coordinator({"d": Quota(max_in_flight=2)}, clock=Clock())
    assert len(co.exchange(_admits(0, 2)).grants) == 2
    assert co.exchange(_admits(1, 1, start=5)).grants == []  # waits: both places taken
    assert co.exchange(_admits(2, 1, start=7)).grants == []
    co.exchange(Exchange(0, dones=[Done(0, "d")]))
    assert [g.id for g in co.exchange(Exchange(1)).grants] == [5]  # shard 1 asked first
    assert co.exchange(Exchange(2)).grants == []


def test_a_group_limit_counts_every_deployment_in_it() -> None:
    quotas = {"a": Quota(group="g"), "b": Quota(group="g")}
    co = Coordinator(quotas, {"g": 1}, clock=Clock())
    assert len(co.exchange(_admits(0, 1, "a")).grants) == 1
    assert co.exchange(_admits(1, 1, "b", start=3)).grants == []


def test_a_restarted_or_vanished_shard_frees_its_places_and_restarts_its_counts() -> None:
    co = Coordinator({"d": Quota(max_in_flight=1)}, clock=Clock())
    co.exchange(Exchange(0, admits=[Admit(0, "d")], progress={"d": [3, 1, 0]}))
    assert co.exchange(_admits(1, 1, start=9)).grants == []
    co.forget(0)  # its connection closed (killed): the place is free, its counts stay
    assert [g.id for g in co.exchange(Exchange(1)).grants] == [9]
    assert co.totals() == {"d": [3, 1, 0]}
    co.hello(0)  # its restart reports every key of its shard again
    assert co.totals() == {}


def test_retry_after_pauses_every_shard_capped() -> None:
    clock = Clock()
    co = Coordinator({"d": Quota(requests_per_minute=6000)}, retry_after_cap_s=5, clock=clock)
    g = co.exchange(_admits(0, 1)).grants[0]
    reply = co.exchange(Exchange(0, dones=[Done(g.id, "d", retry_after_s=30)]))
    assert reply.pauses["d"] == pytest.approx(5.0)
    assert co.exchange(_admits(1, 1, start=4)).grants[0].delay_s == pytest.approx(5.0)
    # a deployment without admissions learns pauses through the same reply
    co2 = Coordinator({"e": Quota()}, clock=clock)
    assert co2.exchange(Exchange(0, pauses={"e": 2.0})).pauses == {"e": pytest.approx(2.0)}
    assert not Quota().admits


def test_remaining_headers_below_our_books_slow_everyone_once() -> None:
    clock = Clock()
    co = Coordinator({"d": Quota(requests_per_minute=600)}, clock=clock)  # 100 per 10 s
    grants = co.exchange(_admits(0, 3)).grants
    assert grants[0].expected_requests == pytest.approx(99)
    # The service says 40 left where we expect 99: 59 are used by someone else.
    for g in grants:  # every answer granted before the correction reports the same shortfall
        co.exchange(Exchange(0, dones=[Done(g.id, "d", remaining_requests=40.0,
                                            expected_requests=g.expected_requests,
                                            seq=g.seq)]))
    assert co.deps["d"].requests.total == pytest.approx(3 + 59)  # booked once, not three times
    # An answer within the margin changes nothing.
    g = co.exchange(_admits(0, 1, start=10)).grants[0]
    co.exchange(Exchange(0, dones=[Done(g.id, "d", remaining_requests=g.expected_requests,
                                        expected_requests=g.expected_requests, seq=g.seq)]))
    assert co.deps["d"].requests.total == pytest.approx(63)
    assert math.isnan(Coordinator({"x": Quota(max_in_flight=1)}).exchange(
        _admits(0, 1, "x")).grants[0].expected_requests)
