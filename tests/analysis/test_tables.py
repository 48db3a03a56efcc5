"""Paper tables and their Markdown, LaTeX, CSV and HTML renderings."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from analysis import (
    format_cells,
    paper_table,
    select_at_sparsity,
    short_of_level,
    short_of_level_note,
    sparsity_level_table,
    to_csv,
    to_html,
    to_latex,
    to_markdown,
)
from analysis._tables import column_groups, metric_header


@pytest.fixture
def trials() -> pd.DataFrame:
    """Dense reference, method a (front at 0.5/0.85/0.92) and method b (front at 0.6/0.99)."""
    rows = [
        # method, status, delta_t, sparsity, miou, abs_err, backbone, head
        ("dense", "COMPLETE", 0.0, 0.0, 40.0, 0.50, 0.0, 0.0),
        ("a", "COMPLETE", 1.0, 0.5, 40.4, 0.49, 0.45, 0.7),
        ("a", "COMPLETE", -0.5, 0.85, 39.8, 0.51, 0.84, 0.9),
        ("a", "COMPLETE", -1.5, 0.92, 39.4, 0.52, 0.93, 0.85),
        ("a", "COMPLETE", -3.0, 0.91, 38.0, 0.60, 0.90, 0.95),  # dominated by the 0.92 one
        ("a", "FAILED", math.nan, math.nan, math.nan, math.nan, math.nan, math.nan),
        ("b", "COMPLETE", 0.5, 0.6, 40.2, 0.50, 0.55, 0.8),
        ("b", "COMPLETE", -4.0, 0.99, 30.0, 0.70, 0.99, 0.98),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "method",
            "status",
            "delta_t",
            "sparsity",
            "metric:segment_semantic:miou",
            "metric:depth:abs_err",
            "sparsity:backbone",
            "sparsity:head:depth",
        ],
    )
    frame["trial_id"] = np.arange(10, 10 + len(frame))
    frame["seed"] = 0
    frame["is_reference"] = frame["method"] == "dense"
    return frame


def test_select_at_sparsity(trials: pd.DataFrame) -> None:
    chosen = select_at_sparsity(trials, 0.9)
    assert chosen.index.tolist() == ["a", "b"]  # the reference is not a method row
    assert chosen["trial_id"].tolist() == [13, 17]  # lowest sparsity at or above 0.9
    # Nothing on a's front reaches 0.95: a has no row, unless the closest is asked for.
    assert select_at_sparsity(trials, 0.95)["trial_id"].tolist() == [17]
    assert select_at_sparsity(trials, 0.95, closest=True)["trial_id"].tolist() == [13, 17]
    # Level 0.5: a's 0.5 trial exactly; b's lowest above is 0.6.
    assert select_at_sparsity(trials, 0.5)["trial_id"].tolist() == [11, 16]
    with pytest.raises(ValueError, match="sparsity must lie in"):
        select_at_sparsity(trials, 90)


def test_paper_table_rows_and_columns(trials: pd.DataFrame) -> None:
    table = paper_table(trials, sparsity=0.9)
    assert table.index.name == "method"
    assert table.index.tolist() == ["dense (reference)", "a", "b"]
    assert table.columns.tolist() == [
        "trial",
        "segment_semantic miou",
        "depth abs_err",
        "sparsity backbone (%)",
        "sparsity head:depth (%)",
        "sparsity (%)",
        "Delta_T (%)",
    ]
    assert table["trial"].tolist() == [10, 13, 17]
    assert table.loc["a", "sparsity (%)"] == pytest.approx(92.0)
    assert table.loc["a", "sparsity backbone (%)"] == pytest.approx(93.0)
    assert table.loc["b", "Delta_T (%)"] == -4.0
    assert table.loc["a", "segment_semantic miou"] == 39.4


def test_paper_table_shows_per_task_deltas_and_delta_m_beside_delta_t(
    trials: pd.DataFrame,
) -> None:
    trials = trials.assign(
        **{"delta:depth": trials["delta_t"] * 2, "delta_m": trials["delta_t"] / 2}
    )
    table = paper_table(trials, sparsity=0.9)
    assert table.columns.tolist()[-3:] == ["Delta depth (%)", "Delta_T (%)", "Delta_m (%)"]
    assert table.loc["a", "Delta depth (%)"] == -3.0 and table.loc["a", "Delta_m (%)"] == -0.75


def test_a_level_lists_only_trials_at_or_above_it(trials: pd.DataFrame) -> None:
    table = paper_table(trials, sparsity=0.95)
    assert table.index.tolist() == ["dense (reference)", "b"]
    assert (table.loc[["b"], "sparsity (%)"] >= 95.0).all()
    assert short_of_level(trials, 0.95) == {"a": pytest.approx(0.92)}
    assert short_of_level(trials, 0.9) == {}
    assert short_of_level_note(trials, 0.95) == "No trial at or above 95%: a (highest 92.0%)."
    assert short_of_level_note(trials, 0.9) == ""


def test_paper_table_without_reference_or_trials(trials: pd.DataFrame) -> None:
    no_reference = trials.drop(columns="is_reference")
    # Without a reference flag the dense method is an ordinary method (short of 90%).
    assert paper_table(no_reference, 0.9).index.tolist() == ["a", "b"]
    assert paper_table(no_reference, 0.0).index.tolist() == ["dense", "a", "b"]
    empty = paper_table(pd.DataFrame(), 0.9)
    assert empty.empty and "Delta_T (%)" in empty.columns


def test_sparsity_level_table(trials: pd.DataFrame) -> None:
    table = sparsity_level_table(trials, levels=(0.5, 0.9, 0.99))
    assert table.columns.tolist() == [">= 50%", ">= 90%", ">= 99%"]
    assert table.loc["a"].tolist()[:2] == [1.0, -1.5]
    assert math.isnan(table.loc["a", ">= 99%"])
    assert table.loc["b", ">= 99%"] == -4.0


def _small() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "trial": pd.array([3, None], dtype="Int64"),
            "score_a": [1.234, math.nan],
            "pct %": [-0.001, 12.0],
            "name": ["x|y", "a_b"],
        },
        index=pd.Index(["m1", "m2"], name="method"),
    )
    return frame


def test_format_cells() -> None:
    cells = format_cells(_small())
    assert cells.loc["m1"].tolist() == ["3", "1.23", "0.00", "x|y"]  # no "-0.00"
    assert cells.loc["m2"].tolist() == ["–", "–", "12.00", "a_b"]
    assert format_cells(_small(), decimals=1).loc["m1", "score_a"] == "1.2"


def test_to_markdown() -> None:
    assert to_markdown(_small()) == (
        "| method | trial | score_a | pct % | name |\n"
        "| :--- | ---: | ---: | ---: | :--- |\n"
        "| m1 | 3 | 1.23 | 0.00 | x\\|y |\n"
        "| m2 | – | – | 12.00 | a_b |\n"
    )


def test_to_latex() -> None:
    text = to_latex(_small(), caption="Results at 90%", label="tab:results")
    assert "\\begin{tabular}{lrrrl}" in text
    assert "method & trial & score\\_a & pct \\% & name \\\\" in text
    assert "m2 & -- & -- & 12.00 & a\\_b \\\\" in text
    assert "\\toprule" in text and "\\bottomrule" in text
    assert "\\caption{Results at 90\\%}" in text and "\\label{tab:results}" in text
    assert text.count("\\begin{table}") == 1 and text.endswith("\\end{table}\n")


def test_to_csv_keeps_raw_numbers(tmp_path) -> None:
    path = tmp_path / "t.csv"
    text = to_csv(_small(), path)
    assert path.read_text() == text
    back = pd.read_csv(io.StringIO(text), index_col="method")
    assert back.loc["m1", "score_a"] == 1.234 and math.isnan(back.loc["m2", "score_a"])


def test_to_html_escapes() -> None:
    frame = pd.DataFrame({"v": [1.0]}, index=pd.Index(["<script>x</script>"], name="m&"))
    text = to_html(frame)
    assert "<script>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "m&amp;" in text
    assert '<td class="num">1.00</td>' in text


def test_the_paper_table_groups_its_columns_with_units_in_html(trials: pd.DataFrame) -> None:
    table = paper_table(trials.assign(**{"delta:depth": trials["delta_t"]}), sparsity=0.9)
    groups = column_groups(table)
    assert groups["segment_semantic miou"] == ("segment_semantic", "mIoU (%) ↑")
    assert groups["depth abs_err"] == ("depth", "abs. error ↓")
    assert groups["sparsity head:depth (%)"] == ("sparsity (%)", "head:depth")
    assert groups["Delta_T (%)"] == ("score vs the dense reference (%)", "Delta_T")
    assert groups["Delta depth (%)"] == ("Delta_T of each task (%)", "depth")
    text = to_html(table)
    head, body = text.split("<tbody>")
    top, bottom = head.split("</tr><tr>")
    # the index and the trial id span both header rows; every group spans its columns
    assert '<th rowspan="2">method</th><th rowspan="2" class="num">trial</th>' in top
    assert '<th colspan="1" class="group">segment_<wbr>semantic</th>' in top
    assert '<th colspan="3" class="group">sparsity (%)</th>' in top
    assert '<th colspan="1" class="group">Delta_T of each task (%)</th>' in top
    assert '<th colspan="1" class="group">score vs the dense reference (%)</th>' in top
    assert bottom.count("<th") == len(table.columns) - 1
    assert '<th class="num">mIoU (%) ↑</th>' in bottom and ">overall</th>" in bottom
    assert body.count('<td class="num">') == table.size  # every cell is a number
    assert metric_header("angle_mean") == "mean angle (°) ↓" and metric_header("x") == "x"
    # Markdown and CSV keep one flat header per column
    assert to_markdown(table).splitlines()[0].startswith("| method | trial | segment_semantic miou")
    levels = sparsity_level_table(trials, levels=(0.5, 0.9))
    assert '<th colspan="2" class="group">best Delta_T (%) of a trial with sparsity</th>' in (
        to_html(levels)
    )
