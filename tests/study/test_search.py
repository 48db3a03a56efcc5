"""The Optuna searcher of a method run, on real SQLite storages (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from study._samplers import SAMPLERS, build_sampler, sampler_seed
from study._search import LevelPlan, StudySearch, settle_running_trials, stored_trial_count
from study._tune_config import ERROR_KEY

STATE = optuna.trial.TrialState


def _storage(tmp_path: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")


def _search(
    storage: optuna.storages.BaseStorage,
    space: dict[str, optuna.distributions.BaseDistribution] | None = None,
    seed: int = 0,
    name: str = "s/magnitude/seed-0",
    levels: LevelPlan | None = None,
    sampler: str = "random",
) -> StudySearch:
    return StudySearch(
        space=space or {"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
        metric=["delta_t", "sparsity"],
        mode=["max", "max"],
        sampler=build_sampler(sampler, seed),
        study_name=name,
        storage=storage,
        levels=levels,
    )


def _trials(storage: optuna.storages.BaseStorage, name: str = "s/magnitude/seed-0") -> list:
    return optuna.load_study(study_name=name, storage=storage).trials


def test_running_trials_get_their_stored_values_or_fail(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    study = optuna.create_study(
        study_name="s/magnitude/seed-0", storage=storage, directions=["maximize", "maximize"]
    )
    stored, lost, done = study.ask(), study.ask(), study.ask()
    study.tell(done, [1.0, 0.5])
    told = settle_running_trials(storage, "s/magnitude/seed-0", {stored.number: [-2.5, 0.9]})
    assert told == (1, 1)
    trials = {t.number: t for t in _trials(storage)}
    assert trials[stored.number].state == STATE.COMPLETE
    assert trials[stored.number].values == [-2.5, 0.9]
    assert trials[lost.number].state == STATE.FAIL
    assert trials[done.number].values == [1.0, 0.5]
    assert settle_running_trials(storage, "no-such-study") == (0, 0)


def test_a_finished_trial_is_told_every_objective_by_name(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    search = _search(storage)
    search.suggest("t1")
    search.on_trial_complete("t1", {"delta_t": -3.0, "sparsity": 0.9, "other": 1})
    (trial,) = _trials(storage)
    assert trial.state == STATE.COMPLETE and trial.values == [-3.0, 0.9]
    assert search.problems == {}


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"sparsity": 0.9}, "no value for objective 'delta_t'"),
        ({"delta_t": float("nan"), "sparsity": 0.9}, "reported nan for objective 'delta_t'"),
    ],
)
def test_a_missing_objective_is_told_fail_and_kept(
    tmp_path: Path, result: dict, problem: str
) -> None:
    storage = _storage(tmp_path)
    search = _search(storage)
    search.suggest("t1")
    search.on_trial_complete("t1", result)
    assert _trials(storage)[0].state == STATE.FAIL
    assert problem in search.problems["t1"]


def test_a_trial_that_raised_is_told_fail_without_a_problem(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    search = _search(storage)
    search.suggest("t1")
    search.on_trial_complete("t1", {ERROR_KEY: "ValueError: boom"})
    search.suggest("t2")
    search.on_trial_complete("t2", None, error=True)
    assert [t.state for t in _trials(storage)] == [STATE.FAIL, STATE.FAIL]
    assert search.problems == {}


def test_a_failed_tell_is_kept_as_a_problem(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    search = _search(storage)
    search.suggest("t1")
    trial = search._ot_trials["t1"]
    search._study.tell(trial, [1.0, 1.0])  # told elsewhere: Optuna refuses a second tell
    search.on_trial_complete("t1", {"delta_t": 2.0, "sparsity": 0.5})
    assert "Optuna did not take the result" in search.problems["t1"]


def test_pruned_trials_are_told_pruned(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    search = _search(storage)
    search.suggest("t1")
    search.on_trial_pruned("t1")
    search.on_trial_pruned("t1")  # once only
    assert [t.state for t in _trials(storage)] == [STATE.PRUNED]


def test_a_resumed_sampler_does_not_replay_its_first_draws(tmp_path: Path) -> None:
    """The mechanism behind 'resume repeats a finished configuration': a sampler re-created
    with the study's seed draws the same start-up parameters again."""
    storage = _storage(tmp_path)
    first = _search(storage, seed=sampler_seed(0, 0, 0))
    for index in range(3):
        first.suggest(f"a{index}")
        first.on_trial_complete(f"a{index}", {"delta_t": float(index), "sparsity": 0.5})
    before = [t.params for t in _trials(storage)]

    replayed = build_sampler("random", sampler_seed(0, 0, 0))
    again = optuna.create_study(sampler=replayed).ask({"x": first._space["x"]}).params
    assert again == before[0]  # the old behaviour: the same seed, the same first draw

    stored = stored_trial_count(storage, "s/magnitude/seed-0")
    assert stored == 3
    resumed = _search(storage, seed=sampler_seed(0, 0, stored))
    for index in range(3):
        resumed.suggest(f"b{index}")
        resumed.on_trial_complete(f"b{index}", {"delta_t": 0.0, "sparsity": 0.5})
    complete = [t.params for t in _trials(storage) if t.state == STATE.COMPLETE]
    assert len(complete) == 6
    assert len({p["x"] for p in complete}) == 6


def test_a_suggestion_repeating_a_finished_trial_is_drawn_again(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    space = {"rounds": optuna.distributions.IntDistribution(2, 3)}
    search = _search(storage, space=space)
    seen = []
    for index in range(2):
        params = search.suggest(f"t{index}")
        seen.append(params["rounds"])
        search.on_trial_complete(f"t{index}", {"delta_t": 1.0, "sparsity": 0.5})
    assert sorted(seen) == [2, 3]  # the second draw never repeats the first
    duplicates = [t for t in _trials(storage) if "duplicate_of" in t.user_attrs]
    assert all(t.state == STATE.FAIL for t in duplicates)


def test_an_exhausted_space_repeats_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = _storage(tmp_path)
    search = _search(storage, space={"r": optuna.distributions.IntDistribution(2, 2)})
    search.suggest("t0")
    search.on_trial_complete("t0", {"delta_t": 1.0, "sparsity": 0.5})
    assert search.suggest("t1") == {"r": 2}
    assert "repeats the parameters of finished trial 0" in caplog.text


LEVELS = (0.5, 0.7, 0.9)


def _level_space() -> dict[str, optuna.distributions.BaseDistribution]:
    return {
        "target_sparsity": optuna.distributions.CategoricalDistribution(LEVELS),
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
    }


@pytest.mark.parametrize("sampler", ["tpe", "random", "nsga2"])
def test_levels_get_exactly_their_share_of_trials(tmp_path: Path, sampler: str) -> None:
    storage = _storage(tmp_path)
    search = _search(storage, _level_space(), levels=LevelPlan.of(LEVELS, []), sampler=sampler)
    placed = []
    for index in range(9):
        params = search.suggest(f"t{index}")
        placed.append(params["target_sparsity"])
        result = {"delta_t": -10 * params["target_sparsity"], "sparsity": params["target_sparsity"]}
        search.on_trial_complete(f"t{index}", result)
    assert placed == list(LEVELS) * 3  # the fewest first, ties in order
    complete = [t for t in _trials(storage) if t.state == STATE.COMPLETE]
    assert sorted(t.params["target_sparsity"] for t in complete) == sorted(LEVELS * 3)
    assert len({t.params["lr"] for t in complete}) == 9  # the sampler chose the rest


def test_a_resumed_run_fills_the_levels_its_finished_trials_left(tmp_path: Path) -> None:
    """After a kill: finished trials at 0.5, 0.5 and 0.7 (one interrupted at 0.9 is run
    again); the resumed run's three trials go to 0.9, 0.7 and 0.9."""
    finished = [{"target_sparsity": 0.5}, {"target_sparsity": 0.5}, {"target_sparsity": 0.7}]
    plan = LevelPlan.of(LEVELS, finished)
    assert plan is not None and plan.counts == {0.5: 2, 0.7: 1, 0.9: 0}
    search = _search(_storage(tmp_path), _level_space(), levels=plan)
    placed = [search.suggest(f"t{index}")["target_sparsity"] for index in range(4)]
    assert placed == [0.9, 0.7, 0.9, 0.5]
    assert plan.counts == {0.5: 3, 0.7: 2, 0.9: 2}
    assert LevelPlan.of((), finished) is None


def test_a_redrawn_duplicate_keeps_its_level(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    space = {
        "target_sparsity": optuna.distributions.CategoricalDistribution((0.5, 0.9)),
        "rounds": optuna.distributions.IntDistribution(2, 3),
    }
    search = _search(storage, space, levels=LevelPlan.of((0.5, 0.9), []))
    seen = []
    for index in range(4):
        params = search.suggest(f"t{index}")
        seen.append((params["target_sparsity"], params["rounds"]))
        search.on_trial_complete(f"t{index}", {"delta_t": 1.0, "sparsity": 0.5})
    assert sorted(seen) == [(0.5, 2), (0.5, 3), (0.9, 2), (0.9, 3)]
    assert search.levels is not None and search.levels.counts == {0.5: 2, 0.9: 2}


def test_a_level_alone_is_not_a_configuration_to_deduplicate(tmp_path: Path) -> None:
    space = {"target_sparsity": optuna.distributions.CategoricalDistribution((0.5, 0.9))}
    search = _search(_storage(tmp_path), space, levels=LevelPlan.of((0.5, 0.9), []))
    for index in range(4):
        search.suggest(f"t{index}")
        search.on_trial_complete(f"t{index}", {"delta_t": 1.0, "sparsity": 0.5})
    assert [t.state for t in _trials(_storage(tmp_path))] == [STATE.COMPLETE] * 4


def test_sampler_seeds_and_names() -> None:
    assert sampler_seed(3, 2, 0) == 5  # a new study keeps the seed it always had
    assert len({sampler_seed(3, 2, n) for n in range(50)}) == 50
    assert SAMPLERS.names() == ["gp", "nsga2", "random", "tpe"]
    with pytest.raises(KeyError, match=r"unknown sampler 'tpee'.*did you mean 'tpe'"):
        build_sampler("tpee", 0)


def test_optuna_storage_calls_per_trial_do_not_grow_with_the_trials(tmp_path: Path) -> None:
    from study._runner import optuna_storage

    storage = optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    backend = storage.backend  # what reaches the database
    queries = rows = 0
    original_trials, original_trial = backend._get_trials, backend.get_trial

    def trials(*args: object, **kwargs: object) -> list[object]:
        nonlocal queries, rows
        found = original_trials(*args, **kwargs)
        queries, rows = queries + 1, rows + len(found)
        return found

    def trial(*args: object, **kwargs: object) -> object:
        nonlocal queries, rows
        queries, rows = queries + 1, rows + 1
        return original_trial(*args, **kwargs)

    backend._get_trials, backend.get_trial = trials, trial
    search = _search(storage, _level_space(), levels=LevelPlan.of(LEVELS, []), sampler="tpe")
    per_block = []
    for block in range(3):
        queries = rows = 0
        for k in range(15):
            trial_id = f"t{block}-{k}"
            params = search.suggest(trial_id)
            assert params is not None
            search.on_trial_complete(trial_id, {"delta_t": -params["lr"], "sparsity": 0.5})
        per_block.append((queries, rows))
    print("storage queries and trials read per block of 15 trials:", per_block)
    assert per_block[1] == per_block[2], per_block  # after random start-up: constant
    assert per_block[2][0] <= 6 * 15 and per_block[2][1] == 0, per_block  # none read back
