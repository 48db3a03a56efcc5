"""mo-asha: ranking maths checked by hand, rung decisions on synthetic trial curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from study import SchedulerSpec, parse_config
from study._config import SCHEDULER_NAMES
from study._scheduler import (
    SCHEDULERS,
    MultiObjectiveASHA,
    build_scheduler,
    crowding_distance,
    nondominated_rank,
    objective_value,
    rung_order,
)

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
OBJECTIVES = [("delta_t", "max"), ("sparsity", "max")]


def make_trial(trial_id: str) -> Trial:
    return Trial("stand-in", config={}, trial_id=trial_id, stub=True)


class Driver:
    """Feeds synthetic reports to a scheduler as Tune's controller would."""

    def __init__(self, scheduler: MultiObjectiveASHA) -> None:
        self.scheduler = scheduler
        self.trials: dict[str, Trial] = {}

    def report(self, trial_id: str, iteration: int, delta_t: float, sparsity: float) -> str:
        if trial_id not in self.trials:
            self.trials[trial_id] = make_trial(trial_id)
            self.scheduler.on_trial_add(None, self.trials[trial_id])
        result = {"iteration": iteration, "delta_t": delta_t, "sparsity": sparsity}
        return self.scheduler.on_trial_result(None, self.trials[trial_id], result)


def test_nondominated_rank_by_hand():
    # (delta_t max, sparsity max): a and c trade off; b is dominated by a only; d by b and c.
    values = [[-5, 0.5], [-10, 0.4], [-2, 0.3], [-11, 0.1]]
    assert nondominated_rank(values, ["max", "max"]).tolist() == [0, 1, 0, 2]
    # minimising the second objective: c dominates a and b; d (lowest) trades off with c;
    # once c and d are removed, a and b trade off.
    assert nondominated_rank(values, ["max", "min"]).tolist() == [1, 1, 0, 0]
    three = [[1, 1, 1], [2, 0, 1], [0, 0, 0], [1, 1, 1]]
    assert nondominated_rank(three, ["max", "max", "max"]).tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError, match=r"mode must be one of max, min; got 'up'"):
        nondominated_rank(values, ["max", "up"])


def test_crowding_distance_by_hand():
    # Sorted by delta_t: -5, -4, -3, -2 (range 3); by sparsity: .3, .45, .48, .5 (range .2).
    # Inner points: (-3, .45): 2/3 + (.48 - .3)/.2 = 1.5667; (-4, .48): 2/3 + (.5 - .45)/.2.
    front = [[-5, 0.5], [-2, 0.3], [-3, 0.45], [-4, 0.48]]
    distance = crowding_distance(front)
    assert math.isinf(distance[0]) and math.isinf(distance[1])
    assert distance[2] == pytest.approx(2 / 3 + 0.9)
    assert distance[3] == pytest.approx(2 / 3 + 0.25)


def test_rung_order_ranks_fronts_then_crowding():
    # a, c, d, e on front 0 (crowding inf, inf, 1.5667, 0.9167); b on front 1.
    values = [[-5, 0.5], [-10, 0.4], [-2, 0.3], [-3, 0.45], [-4, 0.48]]
    assert rung_order(values, ["max", "max"]).tolist() == [0, 4, 0, 2, 3]


def test_rungs_sit_below_max_t():
    assert MultiObjectiveASHA(OBJECTIVES, max_t=300, grace_period=80).rungs == [80, 240]
    assert MultiObjectiveASHA(OBJECTIVES, max_t=240, grace_period=80).rungs == [80]
    assert MultiObjectiveASHA(OBJECTIVES, max_t=100, grace_period=10, eta=2).rungs == [
        10,
        20,
        40,
        80,
    ]
    with pytest.raises(ValueError, match=r"grace_period must be > 0 and < max_t \(80\)"):
        MultiObjectiveASHA(OBJECTIVES, max_t=80, grace_period=80)
    with pytest.raises(ValueError, match=r"eta must be >= 2; got 1"):
        MultiObjectiveASHA(OBJECTIVES, max_t=80, grace_period=10, eta=1)


def test_asynchronous_decisions_at_the_first_rung():
    """eta 3: a trial continues while fewer than ceil(n/3) recorded trials are ahead of it."""
    scheduler = MultiObjectiveASHA(OBJECTIVES, max_t=100, grace_period=10, eta=3)
    assert scheduler.rungs == [10, 30, 90]
    run = Driver(scheduler)
    assert run.report("a", 5, -50.0, 0.1) == CONTINUE  # before the first rung: not recorded
    assert scheduler.recorded(10) == {}
    # n=1, keep 1: alone at the rung.
    assert run.report("a", 10, -5.0, 0.5) == CONTINUE
    # n=2, keep 1: b is dominated by a (rank 1), one trial ahead -> stop.
    assert run.report("b", 10, -10.0, 0.4) == STOP
    # n=3, keep 1: c (first past the rung, at 12) trades off with a; a front of two has
    # infinite crowding, nobody is strictly ahead -> continue.
    assert run.report("c", 12, -2.0, 0.3) == CONTINUE
    # n=4, keep 2: d is on the front but its crowding (1 + 1 = 2) is below a's and c's
    # (both infinite): two ahead -> stop.
    assert run.report("d", 10, -3.0, 0.45) == STOP
    # n=5, keep 2: e's crowding 2/3 + 0.25 is below a, c and d (2/3 + 0.9): three ahead.
    assert run.report("e", 10, -4.0, 0.48) == STOP
    assert set(scheduler.recorded(10)) == {"a", "b", "c", "d", "e"}
    assert scheduler.recorded(10)["c"].tolist() == [-2.0, 0.3]
    assert [scheduler.stopped_rung(t) for t in "abcde"] == [None, 10, None, 10, 10]
    assert scheduler.stopped_iteration("b") == 10
    # A trial already recorded at a rung is not judged there again.
    assert run.report("a", 20, -100.0, 0.0) == CONTINUE


def test_higher_rungs_and_jumps():
    scheduler = MultiObjectiveASHA(OBJECTIVES, max_t=100, grace_period=10, eta=3)
    run = Driver(scheduler)
    run.report("a", 10, -5.0, 0.5)
    run.report("c", 10, -2.0, 0.3)
    assert run.report("a", 30, 0.0, 0.6) == CONTINUE
    # c at 35 (first past rung 30) is dominated by a's rung-30 vector: stopped at rung 30.
    assert run.report("c", 35, -1.0, 0.55) == STOP
    assert (scheduler.stopped_rung("c"), scheduler.stopped_iteration("c")) == (30, 35)
    # g's first report passes rungs 10 and 30: recorded at both, judged at 30 (n=3, keep 1;
    # a dominates g there, though g would have been on the rung-10 front).
    assert run.report("g", 40, -0.5, 0.58) == STOP
    assert "g" in scheduler.recorded(10) and "g" in scheduler.recorded(30)
    assert scheduler.stopped_rung("g") == 30


def test_reports_at_max_t_are_recorded_but_never_stopped():
    scheduler = MultiObjectiveASHA(OBJECTIVES, max_t=100, grace_period=10, eta=3)
    run = Driver(scheduler)
    for rung in (10, 30, 90):
        run.report("a", rung, 10.0, 0.9)
    # f is dominated at every rung, but its first report is its last evaluation.
    assert run.report("f", 100, -1.0, 0.1) == CONTINUE
    assert all("f" in scheduler.recorded(rung) for rung in (10, 30, 90))
    assert scheduler.stopped_rung("f") is None


def test_results_without_iteration_or_objectives_continue():
    scheduler = MultiObjectiveASHA(OBJECTIVES, max_t=100, grace_period=10)
    trial = make_trial("x")
    final = {"delta_t": -50.0, "sparsity": 0.0, "paretune_final": {}}
    assert scheduler.on_trial_result(None, trial, final) == CONTINUE
    failed = {"iteration": 20, "paretune_error": "boom"}
    assert scheduler.on_trial_result(None, trial, failed) == CONTINUE
    nan = {"iteration": 20, "delta_t": float("nan"), "sparsity": 0.5}
    assert scheduler.on_trial_result(None, trial, nan) == CONTINUE
    assert scheduler.recorded(10) == {}


def test_metric_objectives_are_read_from_the_reported_evaluation():
    flat = {"iteration": 10, "evaluation/metrics/segment_semantic/miou": 0.25}
    nested = {"evaluation": {"metrics": {"segment_semantic": {"miou": 0.5}}}}
    assert objective_value(flat, "metric:segment_semantic:miou") == 0.25
    assert objective_value(nested, "metric:segment_semantic:miou") == 0.5
    assert objective_value(flat, "metric:depth:abs_err") is None
    scheduler = MultiObjectiveASHA(
        [("metric:depth:abs_err", "min"), ("sparsity", "max")], max_t=50, grace_period=10
    )
    trials = [make_trial("a"), make_trial("b")]
    first = {"iteration": 10, "sparsity": 0.5, "evaluation/metrics/depth/abs_err": 0.8}
    worse = {"iteration": 10, "sparsity": 0.4, "evaluation/metrics/depth/abs_err": 0.9}
    assert scheduler.on_trial_result(None, trials[0], first) == CONTINUE
    assert scheduler.on_trial_result(None, trials[1], worse) == STOP


def test_tune_search_properties():
    scheduler = MultiObjectiveASHA(OBJECTIVES, max_t=100, grace_period=10)
    assert scheduler.set_search_properties(None, None) is True
    assert scheduler.set_search_properties("delta_t", "max") is False
    assert "mo-asha" in scheduler.debug_string()


def test_build_scheduler_from_the_study_config():
    assert sorted(SCHEDULERS.names()) == sorted(SCHEDULER_NAMES)
    config = parse_config(
        {
            "name": "s",
            "methods": [{"name": "magnitude"}],
            "budget": {"iterations": 300},
            "scheduler": {"name": "mo-asha", "grace_period": 30, "eta": 2},
        }
    )
    objectives = config.objectives
    scheduler = build_scheduler(config.scheduler, objectives, config.budget.iterations)
    assert isinstance(scheduler, MultiObjectiveASHA)
    assert scheduler.rungs == [30, 60, 120, 240]
    assert scheduler.objectives == [("delta_t", "maximize"), ("sparsity", "maximize")]
    assert build_scheduler(SchedulerSpec(), objectives, 300) is None


def test_stopped_trials_keep_their_records_as_later_competition():
    """Records are never removed: a rung's cut-off uses every trial that reached it."""
    scheduler = MultiObjectiveASHA([("delta_t", "max")], max_t=100, grace_period=10, eta=2)
    run = Driver(scheduler)
    values = np.array([5.0, 4.0, 3.0, 6.0, 1.0, 5.5])
    decisions = [run.report(f"t{i}", 10, float(v), 0.0) for i, v in enumerate(values)]
    # one objective: rank = place; keep ceil(n/2) of n: 5 (1/1), 4 (2nd of 2, keep 1),
    # 3 (3rd of 3, keep 2), 6 (1st of 4), 1 (5th of 5, keep 3), 5.5 (2nd of 6, keep 3).
    assert decisions == [CONTINUE, STOP, STOP, CONTINUE, STOP, CONTINUE]


@pytest.mark.slow
@pytest.mark.integration
def test_tune_stops_the_trials_mo_asha_rejects(tmp_path):
    """A real Tune run, one trial at a time so the asynchronous decisions are known.

    Curves: delta_t = q * iteration, sparsity 0.5 for all; rungs 1 and 3 (eta 3, max_t 9).
    q = 1 and 3 pass both rungs alone or first; q = 2 is 2nd of 3 at rung 1 (keep 1) and
    q = 0.5 is 4th of 4 (keep 2): both stop at iteration 1.
    """
    from ray import tune

    from study._ray import start_ray

    local = start_ray(None, num_cpus=2)

    def curve(config: dict[str, float]) -> None:
        for iteration in range(1, 10):
            tune.report(
                {"iteration": iteration, "delta_t": config["q"] * iteration, "sparsity": 0.5}
            )

    scheduler = MultiObjectiveASHA(OBJECTIVES, max_t=9, grace_period=1, eta=3)
    assert scheduler.rungs == [1, 3]
    tuner = tune.Tuner(
        curve,
        param_space={"q": tune.grid_search([1.0, 3.0, 2.0, 0.5])},
        tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    try:
        results = tuner.fit()
    finally:
        if local is not None:
            local.stop()
    last = {r.config["q"]: r.metrics["iteration"] for r in results}
    assert last == {1.0: 9, 3.0: 9, 2.0: 1, 0.5: 1}
    ids = {r.config["q"]: r.metrics["trial_id"] for r in results}
    assert {q: scheduler.stopped_rung(ids[q]) for q in last} == {
        1.0: None,
        3.0: None,
        2.0: 1,
        0.5: 1,
    }


@pytest.mark.parametrize("seed", range(5))
def test_ahead_of_one_point_equals_the_full_rung_order(seed: int) -> None:
    from study._scheduler import ahead_of, rung_order

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(60, 2)).astype(float)  # many ties and duplicates
    modes = ["max", "min"]
    full = rung_order(values, modes)
    assert [ahead_of(values, modes, k) for k in range(len(values))] == full.tolist()
