"""DMTG task grouping: parsing the stored dict, choosing the trial, tables and figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    assignment_table,
    branch_probability_history,
    grouped_comparison,
    grouped_fronts_figure,
    grouping_heatmap_figure,
    grouping_history_figure,
    is_message_figure,
    parse_grouping,
    select_grouping_trial,
)

TASKS = ["segment_semantic", "depth_zbuffer", "normal"]


def dmtg_grouping(final: list[list[float]], assignment: list[int]) -> dict[str, object]:
    uniform = [[0.5, 0.5]] * 3
    middle = [[0.6, 0.4], [0.45, 0.55], [0.3, 0.7]]
    return {
        "tasks": TASKS,
        "num_groups": 2,
        "shared_stages": 1,
        "assignment": dict(zip(TASKS, assignment, strict=True)),
        "probabilities": final,
        "history": [
            {"iteration": 50, "probabilities": middle},
            {"iteration": 0, "probabilities": uniform},
        ],
    }


FINAL = [[0.9, 0.1], [0.2, 0.8], [0.1, 0.9]]


def study() -> pd.DataFrame:
    """dmtg trials, magnitude on the grouped and ungrouped model, and adapmtl ungrouped."""
    after = {"assignment": {"segment_semantic": 0, "depth_zbuffer": 1}, "shared_stages": 1}
    rows = [
        ("dense", 0.0, 0.0, None, {}, True),
        ("dmtg", 1.0, 0.0, dmtg_grouping(FINAL, [0, 1, 1]), {}, False),
        ("dmtg", 2.0, 0.0, dmtg_grouping(FINAL, [0, 1, 1]), {}, False),
        ("dmtg", 9.0, 0.0, {"assignment": {"normal": 0}}, {}, False),  # no probabilities
        ("magnitude", 1.0, 0.5, None, {}, False),
        ("magnitude", 0.5, 0.9, None, {}, False),
        ("magnitude@grouped", 1.5, 0.5, after, {"grouping": after}, False),
        ("magnitude@grouped", 0.2, 0.9, after, {"grouping": after}, False),
        ("adapmtl", 3.0, 0.9, None, {}, False),
    ]
    frame = pd.DataFrame(
        rows, columns=["method", "delta_t", "sparsity", "grouping", "config", "is_reference"]
    )
    frame["trial_id"] = np.arange(1, len(frame) + 1)
    frame["seed"] = 0
    frame["status"] = "COMPLETE"
    return frame


def test_parse_grouping_sorts_history() -> None:
    info = parse_grouping(dmtg_grouping(FINAL, [0, 1, 1]), trial_id=7)
    assert info.tasks == tuple(TASKS) and info.num_groups == 2 and info.shared_stages == 1
    assert [s.iteration for s in info.history] == [0, 50]
    np.testing.assert_allclose(info.probabilities, FINAL)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"probabilities": [[1.0, 0.0]]}, r"probabilities must be 3 tasks x 2 groups; got shape"),
        ({"assignment": {}}, r"has no task -> branch 'assignment'"),
        (
            {"assignment": {"segment_semantic": 0, "depth_zbuffer": 2, "normal": 1}},
            r"assigns task 'depth_zbuffer' to branch 2, outside 0..1",
        ),
        ({"assignment": {"segment_semantic": 0}}, r"assigns no branch to task 'depth_zbuffer'"),
        ({"history": [{"iteration": 3}]}, r"history entry 0 must hold 'iteration' and"),
        ({"probabilities": "high"}, r"probabilities must be a numeric matrix"),
    ],
)
def test_parse_grouping_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_grouping({**dmtg_grouping(FINAL, [0, 1, 1]), **change}, trial_id=7)


def test_select_prefers_learned_probabilities_then_best_delta() -> None:
    trials = study()
    info = select_grouping_trial(trials)
    assert info is not None and info.trial_id == 3  # trial 4 scores higher but learned nothing
    assert select_grouping_trial(trials, trial_id=4).probabilities is None
    with pytest.raises(ValueError, match="trial 5 has no recorded task grouping"):
        select_grouping_trial(trials, trial_id=5)
    assert select_grouping_trial(trials.drop(columns="grouping")) is None
    failed = trials.assign(status="FAILED")
    assert select_grouping_trial(failed) is None


def test_assignment_table_and_history() -> None:
    info = parse_grouping(dmtg_grouping(FINAL, [0, 1, 1]), trial_id=3)
    table = assignment_table(info)
    assert table["branch"].to_dict() == {"segment_semantic": 0, "depth_zbuffer": 1, "normal": 1}
    assert table.loc["normal", "probability"] == pytest.approx(0.9)
    assert table.loc["normal", "shares branch with"] == "depth_zbuffer"
    assert table.loc["segment_semantic", "shares branch with"] == "-"
    history = branch_probability_history(info)
    assert history.index.tolist() == [0, 50, 51]  # the final values follow the history
    np.testing.assert_allclose(history["segment_semantic"], [0.5, 0.6, 0.9])
    np.testing.assert_allclose(history["normal"], [0.5, 0.7, 0.9])
    bare = parse_grouping({"assignment": {"a": 0, "b": 0}})
    assert math.isnan(assignment_table(bare).loc["a", "probability"])
    assert len(branch_probability_history(bare)) == 0


def test_grouped_comparison_pairs_grouped_with_ungrouped() -> None:
    frame = grouped_comparison(study())
    assert sorted(set(frame["method"])) == ["magnitude", "magnitude@grouped"]
    assert frame.groupby("method")["grouped"].all().to_dict() == {
        "magnitude": False,
        "magnitude@grouped": True,
    }
    # a grouping in the config alone marks a trial as grouped
    trials = study()
    trials.loc[trials["method"] == "magnitude@grouped", "method"] = "snip"
    trials.loc[trials["method"] == "magnitude", "method"] = "snip"
    relabelled = grouped_comparison(trials)
    assert sorted(set(relabelled["method"])) == ["snip", "snip@grouped"]
    ungrouped = study().drop(columns="config").query("method != 'magnitude@grouped'")
    assert len(grouped_comparison(ungrouped)) == 0


def test_heatmap_and_history_figures() -> None:
    info = select_grouping_trial(study())
    fig = grouping_heatmap_figure(info)
    heatmap, marks = fig.data
    np.testing.assert_allclose(heatmap.z, FINAL)
    assert list(marks.x) == ["branch 0", "branch 1", "branch 1"]
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "50", "final"]
    np.testing.assert_allclose(steps[0].args[0]["z"][0], [[0.5, 0.5]] * 3)
    history = grouping_history_figure(info)
    assert [t.meta["task"] for t in history.data] == TASKS
    np.testing.assert_allclose(history.data[1].y, [0.5, 0.55, 0.8])
    assert is_message_figure(grouping_heatmap_figure(None))
    bare = parse_grouping({"assignment": {"a": 0}}, trial_id=4)
    assert is_message_figure(grouping_heatmap_figure(bare))
    assert is_message_figure(grouping_history_figure(bare))


def test_grouped_fronts_figure() -> None:
    fig = grouped_fronts_figure(study())
    traces = {t.meta["method"]: t for t in fig.data}
    assert set(traces) == {"magnitude", "magnitude@grouped"}
    grouped = traces["magnitude@grouped"]
    assert grouped.meta["grouped"] and grouped.line.dash == "dash"
    assert grouped.line.color == traces["magnitude"].line.color
    np.testing.assert_allclose(grouped.x, [50.0, 90.0])
    np.testing.assert_allclose(grouped.y, [1.5, 0.2])
    assert is_message_figure(grouped_fronts_figure(study().query("method != 'magnitude@grouped'")))
