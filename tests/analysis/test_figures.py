"""Plotly figures: trace structure, click data, escaping and empty inputs."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis import (
    NO_TRIALS,
    component_sparsity_figure,
    hypervolume_budget_figure,
    hypervolume_vs_budget,
    is_message_figure,
    method_fronts,
    parallel_coordinates_figure,
    pareto_front_figure,
    task_metrics_figure,
    trajectories_figure,
)

TASKS = ("segment_semantic", "depth")
COMPONENTS = ("backbone", "head:segment_semantic", "head:depth")


def make_trials(n_per_method: int = 12, methods: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    trial_id = 100
    for m, method in enumerate(methods):
        for k in range(n_per_method):
            sparsity = float(rng.uniform(0.3, 0.99))
            delta = float(-m - 5 * sparsity**4 + rng.normal(0, 0.3))
            lr = float(10 ** rng.uniform(-4, -2))
            row = {
                "method": method,
                "trial_id": trial_id,
                "seed": k % 2,
                "status": "FAILED" if k == 3 else "COMPLETE",
                "is_reference": False,
                "delta_t": math.nan if k == 3 else delta,
                "sparsity": math.nan if k == 3 else sparsity,
                "iterations": 100,
                "finished_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(minutes=k),
                "params": {"lr": lr, "optimizer": "adam" if k % 2 else "sgd", "note": "<i>"},
                "param:lr": lr,
                "param:optimizer": "adam" if k % 2 else "sgd",
            }
            for task in TASKS:
                row[f"metric:{task}:main"] = 40 + delta
                row[f"metric:{task}:other"] = 1 - delta / 100
            for j, component in enumerate(COMPONENTS):
                row[f"sparsity:{component}"] = min(1.0, sparsity + 0.01 * j)
            rows.append(row)
            trial_id += 1
    return pd.DataFrame(rows)


def make_evaluations(trial_ids: list[int]) -> pd.DataFrame:
    rows = []
    for trial_id in trial_ids:
        for iteration in (0, 50, 100):
            row = {"trial_id": trial_id, "method": "a", "iteration": iteration}
            for component in COMPONENTS:
                row[f"threshold:{component}"] = 0.01 + iteration / 1e4
            for task in TASKS:
                row[f"weight:{task}"] = 1.0 + (iteration / 100) * (0.5 if task == "depth" else -0.5)
            rows.append(row)
    return pd.DataFrame(rows)


def _kind(fig: go.Figure, kind: str) -> list:
    return [t for t in fig.data if t.meta and t.meta.get("kind") == kind]


def test_pareto_front_overlay() -> None:
    trials = make_trials()
    fig = pareto_front_figure(trials)
    fronts = _kind(fig, "front")
    faded = _kind(fig, "all_trials")
    assert [t.name for t in fronts] == ["a", "b"]
    assert [t.name for t in faded] == ["a (all trials)", "b (all trials)"]
    flags = method_fronts(trials)
    for trace in fronts:
        method = trace.meta["method"]
        expected = flags[(flags["method"] == method) & flags["on_front"]]
        assert trace.mode == "lines+markers" and trace.showlegend is not False
        assert sorted(trace.customdata) == sorted(expected["trial_id"])
        assert list(trace.x) == sorted(trace.x)  # drawn left to right
        assert max(trace.x) > 1.0  # sparsity in percent
    for trace in faded:
        method = trace.meta["method"]
        assert trace.showlegend is False and trace.opacity < 1
        completed = flags[flags["method"] == method]["trial_id"]
        assert sorted(trace.customdata) == sorted(completed)  # every completed trial
        assert trace.legendgroup == method
    # Hover shows the parameters, escaped.
    assert "lr = " in fronts[0].hovertext[0] and "&lt;i&gt;" in fronts[0].hovertext[0]


def test_overlay_escapes_names_and_handles_three_objectives() -> None:
    trials = make_trials(methods=("<b>x</b>",))
    trials["parameters"] = np.arange(len(trials), dtype=float)
    fig = pareto_front_figure(
        trials, [("delta_t", "maximize"), ("sparsity", "maximize"), ("parameters", "minimize")]
    )
    (front,) = _kind(fig, "front")
    assert front.name == "&lt;b&gt;x&lt;/b&gt;" and front.meta["method"] == "<b>x</b>"
    assert front.mode == "markers"
    with pytest.raises(ValueError, match="at least two objectives"):
        pareto_front_figure(trials, [("delta_t", "maximize")])


def test_task_metrics_figure() -> None:
    trials = make_trials()
    fig = task_metrics_figure(trials)
    metrics = _kind(fig, "metric")
    assert len(metrics) == len(TASKS) * 2  # one trace per method in each task's subplot
    assert {t.meta["metric"] for t in metrics} == {f"metric:{t}:main" for t in TASKS}
    assert sum(1 for t in metrics if t.showlegend) == 2
    chosen = task_metrics_figure(trials, metrics=["metric:depth:other"])
    assert {t.meta["metric"] for t in _kind(chosen, "metric")} == {"metric:depth:other"}
    with pytest.raises(ValueError, match="'metric:x:y' is not one"):
        task_metrics_figure(trials, metrics=["metric:x:y"])
    no_metrics = trials.drop(columns=[c for c in trials.columns if c.startswith("metric:")])
    assert is_message_figure(task_metrics_figure(no_metrics))
    reference = {"method": "dense", "trial_id": 1, "seed": 0, "status": "COMPLETE"}
    reference |= {"is_reference": True, "delta_t": 0.0, "sparsity": 0.0}
    reference |= {f"metric:{task}:main": 50.0 for task in TASKS}
    with_reference = task_metrics_figure(pd.concat([pd.DataFrame([reference]), trials]))
    assert "dense" not in {t.meta["method"] for t in _kind(with_reference, "metric")}
    lines = [s for s in with_reference.layout.shapes if s.y0 == s.y1 == 50.0]
    assert len(lines) == len(TASKS)  # a dashed line in each subplot instead of a point at 0%


def test_component_sparsity_figure() -> None:
    trials = make_trials()
    fig = component_sparsity_figure(trials, sparsity=0.8)
    bars = _kind(fig, "components")
    assert [b.meta["method"] for b in bars] == ["a", "b"]
    assert fig.layout.barmode == "group"
    assert list(bars[0].x) == list(COMPONENTS)
    row = trials.set_index("trial_id").loc[bars[0].meta["trial_id"]]
    np.testing.assert_allclose(bars[0].y, [row[f"sparsity:{c}"] * 100 for c in COMPONENTS])
    explicit = component_sparsity_figure(trials, trial_ids=[100, 101, 102])
    assert [b.meta["trial_id"] for b in _kind(explicit, "components")] == [100, 101, 102]
    with pytest.raises(ValueError, match="trial 103 is not one"):
        component_sparsity_figure(trials, trial_ids=[103])  # a failed trial


def test_hypervolume_budget_figure() -> None:
    trials = make_trials()
    fig = hypervolume_budget_figure(trials, budget="iterations")
    traces = _kind(fig, "hypervolume")
    assert [t.name for t in traces] == ["a", "b"]
    curves = hypervolume_vs_budget(trials, "iterations")
    final = curves.groupby("method")["hypervolume"].last()
    assert traces[0].y[-1] == pytest.approx(final["a"])
    assert traces[0].x[0] == 0 and traces[0].line.shape == "hv"
    assert is_message_figure(hypervolume_budget_figure(trials.assign(flops=np.nan), "flops"))


def test_trajectories_figure() -> None:
    evaluations = make_evaluations([100, 101, 102])
    fig = trajectories_figure(evaluations, max_trials=2)
    thresholds = _kind(fig, "threshold")
    weights = _kind(fig, "weight")
    assert {t.meta["trial_id"] for t in thresholds} == {100, 101}
    assert len(thresholds) == 2 * len(COMPONENTS) and len(weights) == 2 * len(TASKS)
    assert list(weights[0].x) == [0, 50, 100]
    only = trajectories_figure(evaluations, trial_ids=[102])
    assert {t.meta["trial_id"] for t in only.data} == {102}
    no_columns = evaluations[["trial_id", "method", "iteration"]]
    assert is_message_figure(trajectories_figure(no_columns))


def test_parallel_coordinates_figure() -> None:
    trials = make_trials()
    fig = parallel_coordinates_figure(trials, method="a")
    (trace,) = fig.data
    labels = [d.label for d in trace.dimensions]
    assert labels == ["lr", "optimizer", "Delta_T (%)", "sparsity (%)"]
    optimizer = trace.dimensions[1]
    assert list(optimizer.ticktext) == ["adam", "sgd"]
    done = trials[(trials["method"] == "a") & (trials["status"] == "COMPLETE")]
    np.testing.assert_allclose(trace.line.color, done["delta_t"])
    assert is_message_figure(
        parallel_coordinates_figure(trials.drop(columns=["param:lr", "param:optimizer"]))
    )


@pytest.mark.parametrize(
    "build",
    [
        pareto_front_figure,
        task_metrics_figure,
        component_sparsity_figure,
        hypervolume_budget_figure,
        parallel_coordinates_figure,
    ],
)
def test_empty_and_failed_only_inputs_give_a_message(build) -> None:
    failed = make_trials().assign(status="FAILED")
    for frame in (pd.DataFrame(), failed, failed.iloc[0:0]):
        fig = build(frame)
        assert is_message_figure(fig)
        assert fig.layout.annotations[0].text == NO_TRIALS
        assert len(fig.data) == 0


def test_trajectories_without_evaluations() -> None:
    for evaluations in (None, pd.DataFrame()):
        fig = trajectories_figure(evaluations)
        assert is_message_figure(fig)
        assert "No threshold or task-weight trajectories" in fig.layout.annotations[0].text


def _with_reference_and_an_outlier() -> pd.DataFrame:
    trials = make_trials()
    trials["params"] = [
        {**p, "target_sparsity": round(float(s), 2)}
        for p, s in zip(trials["params"], trials["sparsity"], strict=True)
    ]
    reference = {"method": "dense", "trial_id": 1, "seed": 0, "status": "COMPLETE"}
    reference |= {"is_reference": True, "delta_t": 0.0, "sparsity": 0.0, "params": {}}
    outlier = {"method": "b", "trial_id": 999, "seed": 0, "status": "COMPLETE"}
    outlier |= {"is_reference": False, "delta_t": -151.0, "sparsity": 0.995, "params": {}}
    return pd.concat([pd.DataFrame([reference]), trials, pd.DataFrame([outlier])])


def test_the_reference_is_a_line_and_far_off_points_sit_at_the_edge() -> None:
    trials = _with_reference_and_an_outlier()
    fig = pareto_front_figure(trials, levels=(0.7, 0.9))
    assert "dense" not in {t.meta["method"] for t in fig.data}  # no point at 0% sparsity
    assert min(min(t.x) for t in fig.data) > 25  # the x-axis fits the pruned trials
    lines = {shape.name: shape for shape in fig.layout.shapes}
    reference = lines["dense reference"]
    assert (reference.y0, reference.y1, reference.xref) == (0.0, 0.0, "paper")
    assert [lines[f"level {p}%"].x0 for p in (70, 90)] == [70.0, 90.0]
    low, high = fig.layout.yaxis.range
    deltas = trials.loc[~trials["is_reference"] & (trials["trial_id"] != 999), "delta_t"]
    assert low <= deltas.min() and high >= max(deltas.max(), 0.0)  # every front point shows
    assert low > -20  # the trial at -151 does not squeeze them
    (front_b,) = [t for t in _kind(fig, "front") if t.meta["method"] == "b"]
    at = list(front_b.customdata).index(999)
    assert front_b.y[at] == low and front_b.marker.symbol[at] == "triangle-down"
    assert "off the chart: Delta_T (%) -151.00" in front_b.hovertext[at]
    notes = [a.text for a in fig.layout.annotations]
    assert "▲▼ 1 trial(s) beyond the axis, drawn at its edge" in notes
    assert "dense reference (Delta_T = 0)" in notes and "70%" in notes
    # the hover names trial, method, seed and level
    assert re.search(
        r"<b>trial \d+</b> · a · seed \d · level \d+%", _kind(fig, "front")[0].hovertext[0]
    )


def test_compression_ratio_axis_and_the_report_toggle() -> None:
    trials = _with_reference_and_an_outlier()
    fig = pareto_front_figure(trials, levels=(0.9, 0.99), x_axis="compression", toggle=True)
    assert fig.layout.xaxis.type == "log"
    for trace in _kind(fig, "front"):
        rows = trials.set_index("trial_id").loc[list(trace.customdata)]
        assert np.allclose(trace.x, 1 / (1 - rows["sparsity"].to_numpy(dtype=float)))
    guides = {s.name: s.x0 for s in fig.layout.shapes}
    assert guides["level 90%"] == pytest.approx(10.0) and guides["level 99%"] == pytest.approx(100)
    (menu,) = fig.layout.updatemenus
    sparsity, compression = menu.buttons
    assert menu.active == 1 and sparsity.label == "x: sparsity (%)"
    data, layout, indices = sparsity.args
    assert layout["xaxis"]["type"] == "linear" and len(indices) == len(fig.data)
    assert max(max(x) for x in data["x"]) == pytest.approx(99.5)  # percent again
    assert compression.args[1]["xaxis"]["type"] == "log"
    with pytest.raises(ValueError, match="x_axis must be one of sparsity, compression"):
        pareto_front_figure(trials, x_axis="ratio")
