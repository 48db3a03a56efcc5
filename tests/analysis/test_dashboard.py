"""The dashboard's logic without a browser: study choices, the overlay, the trial panel."""

from __future__ import annotations

import html
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dash import dcc

import analysis
from analysis import FIGURES
from analysis._dashboard import (
    NO_METHODS,
    OVERLAY_FIGURE,
    StudyCatalog,
    StudySource,
    TableQuery,
    clicked_trial_id,
    create_app,
    figure_choices,
    overlay_view,
    refresh_figure,
    refresh_overlay,
    show_trial,
    study_choices,
    study_view,
)
from analysis._dashboard_panel import replay_command, trial_curves_figure, trial_panel
from analysis._dashboard_tables import driver_lines, level_view, sort_of, trial_page
from analysis._figures import is_message_figure
from analysis._load import load_study
from study.cli import main
from study.store import ResultStore
from tests.analysis.throwaway import THROWAWAY_TITLE

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]
PASSWORD = "s3cret-pw"
SECRET_URL = f"postgresql+psycopg://paretune:{PASSWORD}@db.example.org:5432/results"


def _result(sparsity: float, delta: float) -> dict[str, Any]:
    return {
        "status": "COMPLETE",
        "metrics": {
            "segment_semantic": {"miou": 30 + delta, "pixel_acc": 60 + delta},
            "depth_zbuffer": {"abs_err": 0.6 - delta / 100},
        },
        "sparsity": sparsity,
        "components": {
            "backbone": sparsity,
            "head:segment_semantic": sparsity * 0.8,
            "head:depth_zbuffer": sparsity * 0.7,
        },
        "delta_t": delta,
        "delta_t_per_task": {"segment_semantic": delta + 0.5, "depth_zbuffer": delta - 0.5},
        "iterations": 300,
        "wall_time_s": 42.0,
        "device_s": 42.0,
        "started_at": datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
        "finished_at": datetime(2030, 1, 1, 12, 1, tzinfo=UTC),
        "host": "node-a",
    }


def _config(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": "scenes-nyu",
        "model": "resnet-tiny",
        "method": method,
        "method_params": params,
        "iterations": 300,
        "batch_size": 16,
        "seed": 0,
    }


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """demo: dense reference, 3 adapmtl (one failed), 3 magnitude; plus empty and
    failed-only studies."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard')}/paretune.db"
    with ResultStore(url) as store:
        store.create_study("demo", {"name": "demo"}, OBJECTIVES)
        dense = store.start_method_run("demo", "dense", 0)
        store.add_trial(dense, is_reference=True, config=_config("dense", {}), **_result(0, 0))
        adapmtl = store.start_method_run("demo", "adapmtl", 0)
        for k, (sparsity, delta) in enumerate(((0.8, 0.4), (0.9, -0.3), (0.95, -1.5))):
            params = {"target_sparsity": sparsity, "temperature": 1.0 + k}
            trial = store.add_trial(
                adapmtl,
                params=params,
                config=_config("adapmtl", params),
                thresholds={"backbone": 0.02, "head:segment_semantic": 0.01},
                task_weights={"segment_semantic": 1.2, "depth_zbuffer": 0.8},
                **_result(sparsity, delta),
            )
            for iteration in (100, 200, 300):
                store.add_evaluation(
                    trial,
                    {
                        "iteration": iteration,
                        "sparsity": sparsity * iteration / 300,
                        "delta_t": delta * iteration / 300,
                        "metrics": {"segment_semantic": {"miou": 25.0}},
                        "losses": {"segment_semantic": 1.0, "depth_zbuffer": 0.5},
                        "components": {"backbone": sparsity * iteration / 300},
                        "thresholds": {"backbone": 0.01 * iteration / 300},
                        "task_weights": {"segment_semantic": 1.1, "depth_zbuffer": 0.9},
                        "elapsed_s": iteration / 10,
                        "images_seen": iteration * 16,
                    },
                )
        store.add_trial(
            adapmtl,
            params={"target_sparsity": 0.7, "temperature": 0.5},
            status="FAILED",
            error="Traceback ...\nFloatingPointError: loss is NaN",
        )
        magnitude = store.start_method_run("demo", "magnitude", 0)
        for sparsity, delta in ((0.8, -0.2), (0.9, -1.0), (0.95, -3.0)):
            params = {"target_sparsity": sparsity, "end_fraction": 0.7}
            store.add_trial(
                magnitude,
                params=params,
                config=_config("magnitude", params),
                **_result(sparsity, delta),
            )
        store.create_study("empty", {}, OBJECTIVES)
        store.create_study("broken", {}, OBJECTIVES)
        run = store.start_method_run("broken", "magnitude", 0)
        store.add_trial(run, params={"target_sparsity": 0.9}, status="FAILED", error="boom")
    return url


@pytest.fixture
def source(url: str) -> Iterator[StudySource]:
    source = StudySource(url)
    yield source
    source.close()


def _text(node: Any) -> str:
    """Every string and figure title inside a Dash component tree."""
    if node is None:
        return ""
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list | tuple):
        return " ".join(_text(n) for n in node)
    parts = [_text(getattr(node, "children", None))]
    if isinstance(node, dcc.Graph):
        layout = node.figure.layout
        parts += [str(layout.title.text), *(str(a.text) for a in layout.annotations)]
    return " ".join(parts)


def _trial_id(url: str, study: str, method: str, index: int = 0) -> int:
    trials = load_study(url, study, evaluations=False).trials
    return int(trials.loc[trials["method"] == method, "trial_id"].iloc[index])


def test_study_choices(source: StudySource, tmp_path: Path) -> None:
    options, value, message = study_choices(source)
    assert [o["value"] for o in options] == ["demo", "empty", "broken"]
    assert options[0]["label"] == "demo (7/8 complete)"
    assert value == "broken" and message is None  # the newest by default
    assert study_choices(source, "demo")[1] == "demo"
    assert study_choices(source, "gone")[1] == "broken"

    missing = StudySource(f"sqlite:///{tmp_path}/none.db")
    assert study_choices(missing)[:2] == ([], None)
    assert "does not exist" in str(study_choices(missing)[2])
    ResultStore(f"sqlite:///{tmp_path}/fresh.db").close()
    _, value, message = study_choices(StudySource(f"sqlite:///{tmp_path}/fresh.db"))
    assert value is None and message is not None and message.startswith("No studies in sqlite")


def test_overlay_has_one_front_per_method(url: str) -> None:
    view = overlay_view(load_study(url, "demo", evaluations=False))
    assert view.message is None
    assert view.methods == ("adapmtl", "magnitude")  # the dense reference is the line at 0
    assert view.selected == view.methods
    fronts = [t for t in view.figure.data if t.meta["kind"] == "front"]
    assert [t.meta["method"] for t in fronts] == ["adapmtl", "magnitude"]
    assert "dense reference" in {s.name for s in view.figure.layout.shapes}
    faded = [t for t in view.figure.data if t.meta["kind"] == "all_trials"]
    assert len(faded) == 2 and len(faded[0].x) == 3  # the failed adapmtl trial is left out
    assert view.figure.layout.uirevision == "demo"  # zoom kept across refreshes
    assert view.status.startswith("8 trials: 7 complete, 1 failed")
    ids = set(load_study(url, "demo").trials["trial_id"])
    assert {int(i) for t in fronts for i in t.customdata} <= ids
    # plain JSON lists: Dash's clickData leaves out typed-array (base64) customdata
    for trace in json.loads(view.figure.to_json())["data"]:
        assert isinstance(trace["customdata"], list)


def test_overlay_method_selection_keeps_colours(url: str) -> None:
    frames = load_study(url, "demo", evaluations=False)
    full = {t.meta["method"]: t.marker.color for t in overlay_view(frames).figure.data}
    view = overlay_view(frames, ["magnitude"], ["dense", "adapmtl", "magnitude"])
    assert view.selected == ("magnitude",)
    assert {t.meta["method"] for t in view.figure.data} == {"magnitude"}
    assert view.figure.data[0].marker.color == full["magnitude"]
    # a method the checklist did not know yet is switched on by itself
    view = overlay_view(frames, ["magnitude"], ["dense", "magnitude"])
    assert view.selected == ("adapmtl", "magnitude")
    none = overlay_view(frames, [], ["dense", "adapmtl", "magnitude"])
    assert none.message == NO_METHODS and is_message_figure(none.figure)


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ("empty", "No trials recorded for this study yet."),
        ("broken", "No completed trials yet: 1 failed, 0 running, waiting or pruned."),
        ("nope", "unknown study 'nope'"),
        (None, "No study selected."),
    ],
)
def test_overlay_messages(source: StudySource, study: str | None, message: str) -> None:
    view = refresh_overlay(source, study)
    assert is_message_figure(view.figure)
    assert view.message is not None and message.lower() in view.message.lower()
    assert html.escape(message).lower() in view.figure.layout.annotations[0].text.lower()


def test_trial_panel_shows_config_metrics_and_redacted_replay(url: str) -> None:
    frames = load_study(url, "demo")
    trial_id = _trial_id(url, "demo", "adapmtl")
    panel = trial_panel(frames, trial_id, SECRET_URL)
    text = _text(panel)
    assert f"Trial {trial_id} · adapmtl" in text
    assert "target_sparsity" in text and "temperature" in text and "0.8" in text
    assert "segment_semantic miou 30.4" in text  # final metric row
    assert "head:segment_semantic 64.00" in text  # component sparsity (%)
    assert '"method_params"' in text  # the full config block
    assert "threshold g(s)" in text and "task weight" in text  # the curves' subplots
    redacted = "'postgresql+psycopg://paretune:***@db.example.org:5432/results'"
    assert f"paretune replay demo {trial_id} --db {redacted}" in text  # quoted for the shell
    assert PASSWORD not in text


def test_trial_panel_of_failed_and_unknown_trials(url: str) -> None:
    frames = load_study(url, "demo")
    failed = _trial_id(url, "demo", "adapmtl", 3)
    text = _text(trial_panel(frames, failed, url))
    assert "FloatingPointError: loss is NaN" in text and "FAILED" in text
    assert "No final metrics recorded." in text
    assert "No evaluations recorded for this trial" in text
    assert "study 'demo' has no trial 99999" in _text(trial_panel(frames, 99999, url))


def test_trial_curves_figure(url: str) -> None:
    frames = load_study(url, "demo")
    trial_id = _trial_id(url, "demo", "adapmtl")
    fig = trial_curves_figure(frames.evaluations, trial_id)
    kinds = {t.meta["kind"] for t in fig.data}
    assert kinds == {"delta_t", "sparsity", "threshold", "weight", "loss"}
    sparsity = next(t for t in fig.data if t.meta["column"] == "sparsity")
    assert list(sparsity.x) == [100, 200, 300]
    assert sparsity.y[-1] == pytest.approx(80.0)
    assert is_message_figure(trial_curves_figure(frames.evaluations, -1))
    assert is_message_figure(trial_curves_figure(None, trial_id))


def test_show_trial_from_click(source: StudySource, url: str) -> None:
    trial_id = _trial_id(url, "demo", "magnitude", 1)
    click = {"points": [{"curveNumber": 4, "pointNumber": 0, "customdata": trial_id}]}
    assert clicked_trial_id(click) == trial_id
    assert clicked_trial_id({"points": [{"customdata": [trial_id, "x"]}]}) == trial_id
    assert clicked_trial_id(None) is None and clicked_trial_id({"points": []}) is None
    text = _text(show_trial(source, "demo", click))
    assert f"Trial {trial_id} · magnitude" in text and "end_fraction" in text
    assert "Click a point" in _text(show_trial(source, "demo", None))
    assert "unknown study" in _text(show_trial(source, "gone", click))


def test_replay_command_quotes_and_redacts() -> None:
    command = replay_command("my study", 7, SECRET_URL)
    assert command.startswith("paretune replay 'my study' 7 --db ")
    assert PASSWORD not in command and ":***@" in command


def test_app_layout_and_callbacks(url: str) -> None:
    app = create_app(url, study="demo", refresh_s=2)
    assert app.config.serve_locally
    ids = {"study", "methods", "overlay", "refresh", "trial-panel"}
    found = {getattr(c, "id", None) for c in app.layout._traverse()}
    assert ids <= found
    interval = next(c for c in app.layout._traverse() if getattr(c, "id", None) == "refresh")
    assert interval.interval == 2000 and not interval.disabled
    outputs = " ".join(app.callback_map)
    assert "overlay.figure" in outputs and "trial-panel.children" in outputs
    page = app.server.test_client().get("/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "http://" not in body.replace("http://www.w3.org", "")
    assert "https://" not in body
    with pytest.raises(ValueError, match="refresh_s must be >= 0 seconds; got -1"):
        create_app(url, refresh_s=-1)


def _component(app: Any, component_id: str) -> Any:
    return next(c for c in app.layout._traverse() if getattr(c, "id", None) == component_id)


def test_the_figure_list_offers_every_registered_figure(source: StudySource, url: str) -> None:
    app = create_app(url, study="demo", refresh_s=0)
    listed = _component(app, "figure")
    registered = [spec.id for spec in FIGURES.ordered()]
    assert [o["value"] for o in listed.options] == [i for i in registered if i != OVERLAY_FIGURE]
    assert listed.value == listed.options[0]["value"]
    assert "figure-view.children" in " ".join(app.callback_map)
    for option in listed.options:
        figures = refresh_figure(source, "demo", option["value"])
        assert figures, option
        assert all(not is_message_figure(f.figure) for f in figures), option
        assert all(f.figure.layout.uirevision == f"demo:{f.div_id}" for f in figures)
    parcoords = refresh_figure(source, "demo", "fig-parcoords")
    assert [f.div_id for f in parcoords] == ["fig-parcoords-adapmtl", "fig-parcoords-magnitude"]


def test_the_figure_list_says_why_nothing_is_drawn(source: StudySource) -> None:
    def message(study: str | None, figure_id: str | None) -> str:
        (figure,) = refresh_figure(source, study, figure_id)
        assert is_message_figure(figure.figure)
        return str(figure.figure.layout.meta["message"])

    assert message(None, "fig-task-metrics") == "No study selected."
    assert message("demo", None) == "No figure selected."
    assert "unknown study 'nope'" in message("nope", "fig-task-metrics")
    assert message("demo", "fig-nope").startswith("unknown report figure 'fig-nope'; choose one of")
    assert "No completed trials" in message("broken", "fig-components")


def test_a_registered_figure_joins_the_dashboard(
    source: StudySource, url: str, throwaway_figure: str
) -> None:
    listed = _component(create_app(url, study="demo", refresh_s=0), "figure")
    assert {"label": THROWAWAY_TITLE, "value": throwaway_figure} in listed.options
    assert figure_choices()[-1]["value"] == throwaway_figure  # order 65: the last one
    (figure,) = refresh_figure(source, "demo", throwaway_figure)
    assert (figure.div_id, figure.title) == (throwaway_figure, THROWAWAY_TITLE)
    bars = figure.figure.data[0]
    assert list(bars.x) == ["dense", "adapmtl", "magnitude"]  # the failed adapmtl trial is out
    assert list(bars.y) == [1, 3, 3]


def test_dashboard_does_not_import_torch(repo_root: Path) -> None:
    code = "import sys, analysis._dashboard\nassert 'torch' not in sys.modules, 'torch imported'\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    return " ".join(capsys.readouterr().err.split())


def test_cli_errors_are_one_line(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    message = _cli_error(["dashboard"], capsys)
    assert "error: no study database under ./paretune-runs/*/paretune.db; pass --db URL" in message
    message = _cli_error(["dashboard", "--study", "demo"], capsys)
    assert "no study database at" in message and "paretune-runs/demo/paretune.db" in message
    message = _cli_error(["dashboard", "--db", url, "--study", "nope"], capsys)
    assert "unknown study 'nope'" in message
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = _cli_error(["dashboard", "--db", url, "--port", str(port)], capsys)
    assert f"--port {port} on 127.0.0.1 cannot be used" in message


def test_cli_offers_every_readable_study_folder_and_binds_loopback(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[dict[str, Any]] = []
    # The CLI calls the public name, which the package resolves once and then keeps.
    monkeypatch.setattr(
        analysis,
        "serve_dashboard",
        lambda db, **kwargs: served.append({"db": db, **kwargs}),
        raising=False,
    )
    monkeypatch.chdir(tmp_path)
    expected = []
    for name in ("demo", "other"):
        folder = tmp_path / "paretune-runs" / name
        folder.mkdir(parents=True)
        shutil.copyfile(url.removeprefix("sqlite:///"), folder / "paretune.db")
        expected.append(f"sqlite:///{(folder / 'paretune.db').resolve()}")
    junk = tmp_path / "paretune-runs" / "junk"
    junk.mkdir()
    (junk / "paretune.db").write_bytes(bytes(range(256)) * 64)  # not a database
    port = _free_port()
    main(["dashboard", "--port", str(port)])
    main(["dashboard", "--study", "demo", "--port", str(port), "--refresh", "0"])
    common = {"db": expected, "host": "127.0.0.1", "port": port, "labels": ["demo", "other"]}
    assert served == [
        {**common, "study": None, "refresh_s": 5.0},
        {**common, "study": "demo", "refresh_s": 0.0},
    ]
    captured = capsys.readouterr()
    assert f"dashboard of 2 study databases on http://127.0.0.1:{port}/" in captured.out
    skipped = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and all("junk/paretune.db" in line for line in skipped)


def test_catalog_names_studies_across_databases(url: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), copy)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    catalog = StudyCatalog([url, f"sqlite:///{copy}", f"sqlite:///{junk}"], ["a", "b", "junk"])
    options, value, message = study_choices(catalog)
    names = [o["value"] for o in options]
    assert "demo @ a" in names and "demo @ b" in names  # the same name in two databases
    assert message is not None and message.startswith("skipped junk:")
    assert value in names
    assert catalog.url_of("demo @ b") == f"sqlite:///{copy}"
    assert catalog.frames("demo @ b", evaluations=False).studies[0]["name"] == "demo"
    assert "unknown study" in str(refresh_overlay(catalog, "nope").message)


def test_trial_panel_shows_task_grouping(tmp_path: Path) -> None:
    grouping = {
        "tasks": ["segment_semantic", "depth_zbuffer"],
        "num_groups": 2,
        "shared_stages": 1,
        "assignment": {"segment_semantic": 0, "depth_zbuffer": 0},
        "probabilities": [[0.75, 0.25], [0.6, 0.4]],
        "history": [],
    }
    url = f"sqlite:///{tmp_path}/groups.db"
    with ResultStore(url) as store:
        store.create_study("groups", {"name": "groups"}, OBJECTIVES)
        run = store.start_method_run("groups", "dmtg", 0)
        store.add_trial(run, grouping=grouping, **_result(0.0, 0.5))
        store.add_trial(run, grouping={"assignment": {"x": 7}, "num_groups": 2}, **_result(0, 0))
    frames = load_study(url, "groups")
    first, malformed = frames.trials["trial_id"].tolist()
    panel = trial_panel(frames, first, url)
    text = _text(panel)
    assert "Task grouping" in text and "segment_semantic 0 0.750 depth_zbuffer" in text
    assert "Task grouping: probability of each branch per task" in text  # the heatmap
    assert "Task grouping" not in _text(trial_panel(frames, malformed, url))


def test_a_study_whose_driver_died_says_so(url: str, source: StudySource) -> None:
    with ResultStore(url) as store:
        store.set_study_status("demo", "RUNNING")  # as a killed driver leaves it
    status = refresh_overlay(source, "demo").status
    assert "driver not running since" in status and "paretune resume demo" in status
    with ResultStore(url) as store:
        store.acquire_lease("demo", stale_after_s=30)  # this process drives it now
    assert "driver not running" not in refresh_overlay(source, "demo").status


def test_a_study_is_read_again_only_when_it_changed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cache.db"
    with ResultStore(url) as store:
        store.create_study("live", {"name": "live"}, OBJECTIVES)
        run = store.start_method_run("live", "magnitude", 0)
        store.add_trial(run, params={}, **_result(0.5, -1.0))
    source = StudySource(url)
    first = source.frames("live", evaluations=False)
    assert source.frames("live", evaluations=False) is first  # unchanged: not read again
    with ResultStore(url) as store:
        store.add_trial(run, params={}, **_result(0.9, -3.0))
    again = source.frames("live", evaluations=False)
    assert again is not first and len(again.trials) == 2
    source.close()


def test_the_trial_table_pages_sorts_and_filters_on_the_server(url: str) -> None:
    trials = load_study(url, "demo", evaluations=False).trials
    page = trial_page(trials, page_size=3)
    assert (page.total, page.page_count) == (8, 3)
    assert page.methods == ("dense", "adapmtl", "magnitude")
    assert page.states == ("COMPLETE", "FAILED")
    assert [r["trial"] for r in page.rows] == sorted(trials["trial_id"])[:3]
    first = page.rows[1]  # an adapmtl trial: target_sparsity 0.8 is its level
    assert first["id"] == str(first["trial"]) and first["method"] == "adapmtl"
    assert (first["level"], first["sparsity"], first["delta_t"]) == (80, 80.0, 0.4)
    assert first["params"] == "target_sparsity=0.8, temperature=1"
    assert page.rows[0]["method"] == "dense (ref)"
    state = [{"colId": "trial"}, {"colId": "delta_t", "sort": "asc", "sortIndex": 0}]
    assert sort_of(state) == ({"column_id": "delta_t", "direction": "asc"},)
    worst = trial_page(trials, sort_by=sort_of(state))
    values = [r["delta_t"] for r in worst.rows]
    assert values[0] is None and values[1] == -3.0  # a missing value is the smallest
    best = trial_page(trials, sort_by=[{"column_id": "delta_t", "direction": "desc"}])
    assert best.rows[0]["delta_t"] == 0.4 and best.rows[-1]["delta_t"] is None
    failed = trial_page(trials, states=["FAILED"], methods=["adapmtl"])
    assert failed.total == 1 and failed.rows[0]["state"] == "FAILED"
    magnitude = trial_page(trials, methods=["magnitude"], page=99, page_size=2)
    assert magnitude.page_count == 2 and len(magnitude.rows) == 1  # the last page
    assert magnitude.page == 1 and trial_page(trials, page=-1).page == 0


def test_levels_and_the_driver_in_the_view(url: str, source: StudySource, tmp_path: Path) -> None:
    frames = load_study(url, "demo", evaluations=False)
    levels = level_view(frames)  # no sparsity_levels: the headline level, 90%
    assert levels.table.columns.tolist() == [">= 90%"]
    assert levels.table.loc["adapmtl", ">= 90%"] == "-0.30% (n=1, no interval)"
    assert "magnitude" in levels.table.index and "dense" not in levels.table.index
    assert levels.title.startswith("Methods level by level: per method, the best Delta_T")
    assert any("adapmtl vs magnitude at 90%" in s for s in levels.sentences)
    finished = replace(frames, studies=[{**frames.studies[0], "status": "COMPLETE"}])
    assert driver_lines(finished, None).lines == ("study complete: no driver running",)

    from study._live import StudyProgress, write_progress

    running = replace(
        frames,
        studies=[
            {**frames.studies[0], "status": "RUNNING", "config": {"study_dir": str(tmp_path)}}
        ],
    )
    assert driver_lines(running, "driver not running since x").lines == (
        "driver not running since x",
    )
    assert driver_lines(running, None).lines == ("driver running",)
    model = StudyProgress("demo")
    model.add_run(("adapmtl", 0), "adapmtl (seed 0)", 4, done=3, iterations=300)
    model.start(("adapmtl", 0), "t9", 9)
    model.step(("adapmtl", 0), "t9", 140)
    write_progress(tmp_path, model.snapshot())
    state = driver_lines(running, None)
    assert state.running and state.lines[0].startswith("driver running · in progress")
    assert state.lines[1] == "adapmtl (seed 0): #9 140/300 it"

    view = study_view(source, "demo", x_axis="compression", query=TableQuery(states=("FAILED",)))
    assert view.overlay.figure.layout.xaxis.type == "log"
    assert view.page is not None and view.page.total == 1
    assert view.levels is not None and len(view.levels.table) == 2
    assert study_view(source, "nope").page is None


def test_the_page_has_the_tables_below_the_overlay(url: str) -> None:
    app = create_app(url, study="demo", refresh_s=0)
    ids = [getattr(c, "id", None) for c in app.layout._traverse()]
    order = [ids.index(i) for i in ("overlay", "trial-panel", "levels", "trials-grid", "figure")]
    assert order == sorted(order)
    outputs = " ".join(app.callback_map)
    for output in ("levels.children", "trials-grid.rowData", "table-pager.children"):
        assert output in outputs
    assert {"x-axis", "table-methods", "table-states", "table-prev", "table-next"} <= set(ids)
