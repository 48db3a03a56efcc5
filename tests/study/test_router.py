"""The study router and the routed scheduler, with fake searches and Tune trials (no Ray)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from study._ordering import predicted_end, soonest_end
from study._router import WAIT, Route, RoutedScheduler, StudyRouter
from study._tune_config import ERROR_KEY, FIXED_KEY, route_of, searched_params


@dataclass
class FakeSearch:
    """Records what the router tells a method run's searcher; suggests ``params``."""

    params: dict[str, Any] = field(default_factory=lambda: {"target_sparsity": 0.9})
    ready: bool = True
    numbers: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    results: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    completed: list[tuple[str, dict[str, Any] | None, bool]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self.ready:
            return None
        self.numbers[trial_id] = len(self.numbers)
        return dict(self.params)

    def optuna_number(self, trial_id: str) -> int | None:
        return self.numbers.get(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.results.append((trial_id, result))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.completed.append((trial_id, result, error))

    def on_trial_pruned(self, trial_id: str) -> None:
        self.pruned.append(trial_id)


def reference(seed: int = 0) -> Route:
    return Route("dense", seed, {"method": "dense", "seed": seed}, remaining=1)


def method(name: str, seed: int = 0, remaining: int = 2, **changes: Any) -> Route:
    fields = {"method": name, "seed": seed}
    return Route(name, seed, fields, remaining, FakeSearch(), board="b", **changes)


def router(routes: list[Route], **changes: Any) -> StudyRouter:
    return StudyRouter(routes, metric=["delta_t", "sparsity"], mode=["max", "max"], **changes)


def method_of(config: Any) -> str:
    assert isinstance(config, dict), config
    return route_of(config).method


def test_references_come_first_then_the_methods_take_turns() -> None:
    routes = [method("magnitude"), method("adapmtl"), reference()]
    searcher = router(routes)
    order = [method_of(searcher.suggest(f"t{k}")) for k in range(5)]
    assert order == ["dense", "magnitude", "adapmtl", "magnitude", "adapmtl"]
    assert searcher.suggest("t5") == Searcher.FINISHED


def test_a_suggestion_carries_fields_route_and_searched_parameters() -> None:
    route = method("adapmtl", seed=3, objectives=("delta_t", "sparsity"), device_share=2.0)
    config = router([route]).suggest("t0")
    assert isinstance(config, dict)
    assert config[FIXED_KEY] == {"method": "adapmtl", "seed": 3}
    assert searched_params(config) == {"target_sparsity": 0.9}
    trial_route = route_of(config)
    assert (trial_route.method, trial_route.seed, trial_route.reference) == ("adapmtl", 3, False)
    assert (trial_route.board, trial_route.objectives) == ("b", ("delta_t", "sparsity"))
    assert trial_route.device_share == 2.0


def test_a_searched_parameter_may_not_take_a_reserved_name() -> None:
    route = method("adapmtl")
    route.search.params = {FIXED_KEY: 1}
    with pytest.raises(ValueError, match="may not be called 'paretune'"):
        router([route]).suggest("t0")


def test_trials_that_start_from_the_reference_wait_for_it() -> None:
    searcher = router([reference(), method("magnitude", waits_for_reference=True)])
    assert method_of(searcher.suggest("ref")) == "dense"
    assert searcher.suggest("t1") is WAIT  # the reference still trains
    searcher.on_trial_complete("ref", {"paretune_final": {}})
    assert searcher.ready_seeds == {0}
    assert method_of(searcher.suggest("t1")) == "magnitude"


def test_a_seed_whose_reference_failed_gets_no_more_trials() -> None:
    routes = [reference(0), reference(1), method("snip", 0), method("snip", 1, remaining=1)]
    searcher = router(routes)
    searcher.suggest("ref0")
    searcher.suggest("ref1")
    searcher.on_trial_complete("ref0", {ERROR_KEY: "RuntimeError: boom"})
    searcher.on_trial_complete("ref1", None, error=True)
    assert searcher.failed_seeds == {0, 1}
    assert searcher.suggest("t2") == Searcher.FINISHED


def test_a_search_that_suggests_nothing_keeps_its_trial() -> None:
    route = method("magnitude", remaining=1)
    route.search.ready = False
    searcher = router([route])
    assert searcher.suggest("t0") is None
    assert route.remaining == 1 and searcher.route_of("t0") is None
    route.search.ready = True
    assert method_of(searcher.suggest("t0")) == "magnitude"
    assert route.remaining == 0


def test_outcomes_reach_the_search_that_suggested_the_trial() -> None:
    magnitude, snip = method("magnitude"), method("snip")
    stopped = {"t1"}
    searcher = router([magnitude, snip], stopped=lambda t: 1 if t in stopped else None)
    for trial_id in ("t0", "t1"):
        searcher.suggest(trial_id)
    searcher.on_trial_result("t0", {"delta_t": -1.0})
    searcher.on_trial_complete("t0", {"delta_t": -1.0})
    searcher.on_trial_complete("t1", {"delta_t": -9.0})
    searcher.on_trial_result("unknown", {"delta_t": 0.0})  # not this router's: ignored
    assert magnitude.search.results == [("t0", {"delta_t": -1.0})]
    assert magnitude.search.completed == [("t0", {"delta_t": -1.0}, False)]
    assert snip.search.pruned == ["t1"] and snip.search.completed == []


def test_optuna_numbers_and_problems_come_from_the_trial_s_search() -> None:
    route = method("magnitude")
    searcher = router([reference(), route])
    searcher.suggest("ref")
    searcher.suggest("t1")
    route.search.problems["t1"] = "tell failed: storage gone"
    assert searcher.optuna_number("ref") is None and searcher.search_problem("ref") is None
    assert searcher.optuna_number("t1") == 0
    assert searcher.search_problem("t1") == "tell failed: storage gone"
    assert searcher.optuna_number("nobody") is None


def test_pickling_leaves_the_live_searches_behind() -> None:
    searcher = router([method("magnitude")])
    searcher.suggest("t0")
    copy = pickle.loads(pickle.dumps(searcher))
    assert copy.routes == [] and copy.owner == {}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_finished_trial_s_duration_is_kept_by_its_run() -> None:
    clock = FakeClock()
    route = method("magnitude")
    searcher = router([route], clock=clock)
    searcher.suggest("t0")
    clock.now = 12.5
    searcher.on_trial_complete("t0", {"delta_t": -1.0})
    assert route.durations == [12.5] and route.expected_s == 12.5
    assert searcher.started == {}


def endgame(slow_s: float = 60.0, left: int = 1, **durations: list[float]) -> StudyRouter:
    """A router over runs ``other``, ``slow`` and ``fast``: ``other`` has one trial left
    and is suggested at 0; the turn then falls on ``fast`` (``left`` trials left), at 25,
    while ``other``'s trial (30 s on average) still runs. ``slow`` has 1 trial left, or 7
    when ``left`` is above 1."""
    clock = FakeClock()
    runs = [
        method("other", remaining=1, durations=durations.get("other", [30.0])),
        method("slow", remaining=1 if left == 1 else 7, durations=durations.get("slow", [slow_s])),
        method("fast", remaining=left, durations=durations.get("fast", [30.0])),
    ]
    searcher = router(runs, clock=clock)
    assert method_of(searcher.suggest("t0")) == "other"
    clock.now = 25.0
    return searcher


def test_in_the_last_rounds_the_run_that_ends_the_study_soonest_goes_first() -> None:
    searcher = endgame()
    # fast now and slow when other's slot frees at 30: the study ends at 90; slow now
    # and fast at 30: at 85. In turn, fast would have come first.
    assert method_of(searcher.suggest("t1")) == "slow"
    assert method_of(searcher.suggest("t2")) == "fast"


def test_without_a_finished_trial_of_every_run_involved_the_runs_take_turns() -> None:
    assert method_of(endgame(other=[]).suggest("t1")) == "fast"  # the running trial's
    assert method_of(endgame(slow=[]).suggest("t1")) == "fast"  # a candidate's


def test_before_the_last_rounds_the_runs_take_turns() -> None:
    # 2 fast and 7 slow trials of 90 s left on 2 slots: slow first would end sooner,
    # but 9 trials are more than 4 rounds.
    assert soonest_end(25.0, [30.0], [30.0, 90.0], [2, 7]) == 1
    assert method_of(endgame(slow_s=90.0, left=2).suggest("t1")) == "fast"


def test_predicted_end_starts_the_longest_first_on_the_slot_that_frees_first() -> None:
    assert predicted_end([0.0, 0.0], [3.0, 2.0, 2.0, 1.0]) == 4.0
    assert predicted_end([10.0], []) == 10.0
    assert predicted_end([0.0, 5.0], [5.0]) == 5.0


def test_soonest_end_breaks_ties_by_the_turn() -> None:
    assert soonest_end(0.0, [], [30.0, 60.0], [1, 1]) == 0  # one slot: 90 either way
    assert soonest_end(25.0, [30.0], [30.0, 60.0], [1, 1]) == 1


@dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any]


class StopAtOne(TrialScheduler):
    """Stops every trial at its first result and remembers it."""

    def __init__(self) -> None:
        self.stopped: dict[str, int] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        self.stopped[trial.trial_id] = 1
        return TrialScheduler.STOP

    def stopped_rung(self, trial_id: str) -> int | None:
        return self.stopped.get(trial_id)


def test_the_routed_scheduler_keeps_one_scheduler_per_run_and_never_stops_references() -> None:
    built: list[str] = []

    def factory(name: str) -> TrialScheduler | None:
        built.append(name)
        return StopAtOne() if name == "magnitude" else None

    scheduler = RoutedScheduler(factory)
    searcher = router([reference(), method("magnitude"), method("snip")])
    trials = [FakeTrial(f"t{k}", searcher.suggest(f"t{k}")) for k in range(4)]  # type: ignore[arg-type]
    decisions = [scheduler.on_trial_result(None, trial, {}) for trial in trials]
    assert decisions == [
        TrialScheduler.CONTINUE,
        TrialScheduler.STOP,
        TrialScheduler.CONTINUE,
        TrialScheduler.STOP,
    ]
    assert built == ["magnitude", "snip"]  # one each, built on first use; none for dense
    assert scheduler.stopped_rung("t1") == 1 and scheduler.stopped_rung("t2") is None
