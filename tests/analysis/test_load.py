"""Loading stores into the trials/evaluations frames (columns per the frames contract)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis._load import (
    EVALUATION_COLUMNS,
    TRIAL_COLUMNS,
    StudyFrames,
    list_studies,
    load_study,
)
from study.store import ResultStore, StoreError

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
TASKS = ("segment_semantic", "depth_euclidean")


def _result(sparsity: float, delta: float) -> dict[str, object]:
    return {
        "status": "COMPLETE",
        "metrics": {
            "segment_semantic": {"miou": 20 + delta, "pixel_acc": 50.0},
            "depth_euclidean": {"abs_err": 0.5, "rel_err": 0.2},
        },
        "sparsity": sparsity,
        "components": {
            "backbone": sparsity,
            "head:segment_semantic": sparsity / 2,
            "head:depth_euclidean": sparsity / 3,
        },
        "delta_t": delta,
        "delta_t_per_task": {"segment_semantic": delta + 1, "depth_euclidean": delta - 1},
        "iterations": 300,
        "wall_time_s": 30.0,
        "device_s": 30.0,
        "finished_at": datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
        "host": "node-a",
        "node_id": "abc",
    }


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/paretune.db"
    with ResultStore(url) as store:
        store.create_study("demo", {"name": "demo"}, OBJECTIVES)
        dense = store.start_method_run("demo", "dense", 0)
        store.add_trial(
            dense,
            is_reference=True,
            params={},
            config={"method": "dense"},
            **{**_result(0.0, 0.0), "metrics": {"segment_semantic": {"miou": 20.0}}},
        )
        adapmtl = store.start_method_run("demo", "adapmtl", 0)
        first = store.add_trial(
            adapmtl,
            params={"target_sparsity": 0.9, "temperature": 1.5},
            config={"method": "adapmtl", "method_params": {"target_sparsity": 0.9}},
            thresholds={"backbone": 0.02, "head:segment_semantic": 0.01},
            task_weights={"segment_semantic": 1.2, "depth_euclidean": 0.8},
            flops=2.0e12,
            **_result(0.9, 1.5),
        )
        for iteration, sparsity in ((100, 0.3), (200, 0.8)):
            store.add_evaluation(
                first,
                {
                    "iteration": iteration,
                    "sparsity": sparsity,
                    "delta_t": -sparsity,
                    "metrics": {"segment_semantic": {"miou": 10.0 + iteration / 100}},
                    "losses": {task: 1.0 / iteration for task in TASKS},
                    "components": {"backbone": sparsity},
                    "thresholds": {"backbone": 0.01},
                    "task_weights": {"segment_semantic": 1.1},
                    "elapsed_s": iteration / 10,
                    "images_seen": iteration * 16,
                },
            )
        store.add_trial(
            adapmtl,
            params={"target_sparsity": 0.7, "temperature": 0.5},
            status="FAILED",
            error="diverged: loss is NaN",
            iterations=120,
        )
        store.add_trial(
            adapmtl, params={"target_sparsity": 0.8, "temperature": 1.0}, status="RUNNING"
        )
        magnitude = store.start_method_run("demo", "magnitude", 1)
        store.add_trial(
            magnitude,
            params={"target_sparsity": 0.95, "end_fraction": 0.7},
            seed=1,
            **_result(0.95, -3.0),
        )
        store.create_study("second", {}, [("delta_t", "maximize"), ("parameters", "minimize")])
        run = store.start_method_run("second", "dmtg", 0)
        store.add_trial(
            run, params={"num_groups": 2, "optimizer": "adam"}, parameters=5000, **_result(0.0, 0.5)
        )
    return url


def test_trials_frame_columns_and_types(url: str):
    frames = load_study(url, "demo")
    trials = frames.trials
    assert isinstance(frames, StudyFrames)
    assert list(trials.columns[: len(TRIAL_COLUMNS)]) == list(TRIAL_COLUMNS)
    assert len(trials) == 5 and trials["trial_id"].is_unique
    assert trials["trial_id"].dtype == np.int64 and trials["number"].dtype == np.int64
    assert trials["is_reference"].dtype == bool
    for column in ("delta_t", "sparsity", "wall_time_s", "device_s", "flops"):
        assert trials[column].dtype == np.float64, column
    assert str(trials["started_at"].dt.tz) == "UTC"
    assert str(trials["finished_at"].dt.tz) == "UTC"
    expected = {
        "sparsity:backbone",
        "sparsity:head:segment_semantic",
        "sparsity:head:depth_euclidean",
        "metric:segment_semantic:miou",
        "metric:segment_semantic:pixel_acc",
        "metric:depth_euclidean:abs_err",
        "metric:depth_euclidean:rel_err",
        "delta:segment_semantic",
        "delta:depth_euclidean",
        "threshold:backbone",
        "threshold:head:segment_semantic",
        "weight:segment_semantic",
        "weight:depth_euclidean",
        "param:target_sparsity",
        "param:temperature",
        "param:end_fraction",
    }
    assert set(trials.columns[len(TRIAL_COLUMNS) :]) == expected
    prefixes = [c.split(":")[0] for c in trials.columns[len(TRIAL_COLUMNS) :]]
    assert prefixes == sorted(
        prefixes, key=["sparsity", "metric", "delta", "threshold", "weight", "param"].index
    )


def test_trials_frame_values(url: str):
    trials = load_study(url, "demo").trials.set_index("trial_id")
    reference = trials[trials["is_reference"]].iloc[0]
    assert reference["method"] == "dense" and reference["delta_t"] == 0.0
    best = trials[(trials["method"] == "adapmtl") & (trials["status"] == "COMPLETE")].iloc[0]
    assert best["params"] == {"target_sparsity": 0.9, "temperature": 1.5}
    assert best["config"]["method_params"] == {"target_sparsity": 0.9}
    assert best["param:temperature"] == 1.5 and best["param:target_sparsity"] == 0.9
    assert best["metric:segment_semantic:miou"] == 21.5
    assert best["sparsity:head:segment_semantic"] == 0.45
    assert best["delta:segment_semantic"] == 2.5 and best["threshold:backbone"] == 0.02
    assert best["weight:depth_euclidean"] == 0.8 and best["flops"] == 2.0e12
    assert best["finished_at"] == pd.Timestamp("2030-01-01 12:00", tz="UTC")
    assert (best["host"], best["node_id"], best["seed"]) == ("node-a", "abc", 0)
    failed = trials[trials["status"] == "FAILED"].iloc[0]
    assert failed["error"] == "diverged: loss is NaN" and failed["iterations"] == 120
    assert np.isnan(failed["delta_t"]) and np.isnan(failed["metric:segment_semantic:miou"])
    assert np.isnan(failed["flops"]) and pd.isna(failed["finished_at"])
    assert trials["status"].value_counts().to_dict() == {"COMPLETE": 3, "FAILED": 1, "RUNNING": 1}
    assert np.isnan(reference["param:target_sparsity"]) and reference["params"] == {}
    magnitude = trials[trials["method"] == "magnitude"].iloc[0]
    assert magnitude["seed"] == 1 and magnitude["param:end_fraction"] == 0.7


def test_evaluations_frame(url: str):
    evaluations = load_study(url, "demo").evaluations
    assert list(evaluations.columns[: len(EVALUATION_COLUMNS)]) == list(EVALUATION_COLUMNS)
    assert evaluations["iteration"].tolist() == [100, 200]
    assert evaluations["method"].tolist() == ["adapmtl", "adapmtl"]
    assert evaluations["sparsity"].tolist() == [0.3, 0.8]
    assert evaluations["images_seen"].tolist() == [1600, 3200]
    assert evaluations["loss:segment_semantic"].tolist() == [0.01, 0.005]
    assert evaluations["metric:segment_semantic:miou"].tolist() == [11.0, 12.0]
    assert {
        "sparsity:backbone",
        "threshold:backbone",
        "weight:segment_semantic",
        "loss:depth_euclidean",
    } <= set(evaluations.columns)
    assert load_study(url, "demo", evaluations=False).evaluations.empty


def test_metadata_and_several_studies(url: str):
    frames = load_study(url, ["demo", "second", "demo"])
    assert [s["name"] for s in frames.studies] == ["demo", "second"]
    assert frames.studies[1]["objectives"] == [("delta_t", "maximize"), ("parameters", "minimize")]
    assert set(frames.trials["study"]) == {"demo", "second"}
    dmtg = frames.trials[frames.trials["method"] == "dmtg"].iloc[0]
    assert dmtg["parameters"] == 5000 and dmtg["param:optimizer"] == "adam"
    with pytest.raises(ValueError, match=r"do not share one set of objectives"):
        _ = frames.objectives
    assert load_study(url, "demo").objectives == OBJECTIVES


def test_unknown_study_and_missing_database(url: str, tmp_path: Path):
    with pytest.raises(
        StoreError,
        match=r"unknown study 'dmeo'; choose one of: demo, second "
        r"\(did you mean 'demo'\?\)",
    ):
        load_study(url, "dmeo")
    with pytest.raises(StoreError, match=r"database file .*absent\.db does not exist"):
        load_study(f"sqlite:///{tmp_path}/absent.db", "demo")


def test_empty_study_has_the_fixed_columns(tmp_path: Path):
    with ResultStore(f"sqlite:///{tmp_path}/empty.db") as store:
        store.create_study("empty", {}, OBJECTIVES)
        frames = load_study(store, "empty")  # an open store works too
        assert store.list_studies()  # and stays open
    assert list(frames.trials.columns) == list(TRIAL_COLUMNS)
    assert list(frames.evaluations.columns) == list(EVALUATION_COLUMNS)
    assert frames.trials.empty and frames.trials["delta_t"].dtype == np.float64


def test_list_studies(url: str):
    table = list_studies(url)
    assert table["study"].tolist() == ["demo", "second"]
    demo = table.set_index("study").loc["demo"]
    assert demo["trials"] == 5 and demo["complete"] == 3
    assert demo["failed"] == 1 and demo["running"] == 1
    assert demo["methods"] == ["adapmtl", "dense", "magnitude"]
    assert demo["objectives"] == OBJECTIVES
    assert str(table["created_at"].dt.tz) == "UTC"


@pytest.mark.slow
def test_loading_is_bulk_and_fast(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/many.db"
    count = 5000
    with ResultStore(url) as store:
        store.create_study("many", {}, OBJECTIVES)
        run = store.start_method_run("many", "magnitude", 0)
        store.add_trials(
            run,
            [
                {"params": {"target_sparsity": 0.5 + i / (2 * count)}, **_result(0.5, i / count)}
                for i in range(count)
            ],
        )
    start = time.perf_counter()
    trials = load_study(url, "many", evaluations=False).trials
    elapsed = time.perf_counter() - start
    assert len(trials) == count and trials["number"].tolist() == list(range(count))
    assert elapsed < 3.0, f"loading {count} trials took {elapsed:.2f} s"


GROUPING = {
    "tasks": ["segment_semantic", "depth_euclidean"],
    "num_groups": 2,
    "shared_stages": 1,
    "assignment": {"segment_semantic": 0, "depth_euclidean": 1},
    "probabilities": [[0.8, 0.2], [0.3, 0.7]],
    "history": [{"iteration": 10, "probabilities": [[0.5, 0.5], [0.5, 0.5]]}],
}


def _grouping_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/grouping.db"
    with ResultStore(url) as store:
        store.create_study("groups", {"name": "groups"}, OBJECTIVES)
        run = store.start_method_run("groups", "dmtg", 0)
        store.add_trial(run, params={"num_groups": 2}, grouping=GROUPING, **_result(0.0, 0.5))
        plain = store.start_method_run("groups", "magnitude", 0)
        store.add_trial(plain, params={}, **_result(0.9, -1.0))
    return url


def test_grouping_column(tmp_path: Path):
    trials = load_study(_grouping_store(tmp_path), "groups").trials
    assert "grouping" in TRIAL_COLUMNS
    by_method = trials.set_index("method")["grouping"]
    assert by_method["dmtg"] == GROUPING
    assert by_method["magnitude"] is None  # nothing recorded: None, not {}


def test_a_narrow_load_leaves_out_configs_and_the_wide_columns(url: str):
    full = load_study(url, "demo").trials
    narrow = load_study(url, "demo", evaluations=False, configs=False, wide=False).trials
    assert "config" not in narrow and "params" in narrow
    assert not any(c.startswith(("metric:", "sparsity:", "delta:")) for c in narrow.columns)
    assert any(c.startswith("metric:") for c in full.columns)
    shared = [c for c in narrow.columns if c not in ("params",)]
    pd.testing.assert_frame_equal(narrow[shared], full[shared])


def test_columns_loads_only_the_named_ones(url: str):
    full = load_study(url, "demo", evaluations=False).trials
    picked = load_study(url, "demo", evaluations=False, columns=["status", "delta_t"]).trials
    assert list(picked.columns) == ["study", "method", "trial_id", "number", "status", "delta_t"]
    pd.testing.assert_frame_equal(picked, full[list(picked.columns)])
    with pytest.raises(ValueError, match="no_such_column"):
        load_study(url, "demo", columns=["status", "no_such_column"])
