"""Study commands on real SQLite stores, without Ray: names, listings, leases, configs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from study._config import parse_config
from study.cli import main
from study.store import ResultStore
from study.store._models import DriverLeaseRow
from tests.integration.helpers import TINY_DATA

OBJECTIVES = [("delta_t", "maximize"), ("sparsity", "maximize")]


def _config(name: str, **changes: object) -> dict:
    config = {
        "name": name,
        "dataset": {"name": "scenes-nyu", "options": dict(TINY_DATA)},
        "model": {"options": {"width": 8}, "head_options": {"hidden": 8}},
        "methods": [{"name": "dense"}, {"name": "magnitude"}],
        "budget": {"trials_per_method": 2, "iterations": 12, "batch_size": 4},
    }
    config.update(changes)
    return config


def _make_study(
    folder: Path, name: str, status: str = "COMPLETE", study_dir: Path | None = None
) -> str:
    """A study stored under ``folder/paretune-runs/NAME`` as ``paretune run`` would."""
    data = _config(name)
    where = study_dir or folder / "paretune-runs" / name
    config = parse_config({**data, "study_dir": str(where)})
    url = config.storage_url()
    with ResultStore(url) as store:
        store.create_study(name, config.public_dict(), OBJECTIVES)
        run = store.start_method_run(name, "magnitude", 0)
        store.add_trial(
            run, status="COMPLETE", metrics={"segment_semantic": {"miou": 20.0}}, sparsity=0.9,
            delta_t=-1.0,
        )  # fmt: skip
        store.set_study_status(name, status)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return url


def _error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from study._console import console

    monkeypatch.setattr(console, "width", 200)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize(
    "args",
    [
        ["status", "../evil"],
        ["resume", "../evil"],
        ["export", "../evil"],
        ["replay", "../evil", "1"],
        ["report", "../evil"],
        ["dashboard", "--study", "../evil"],
        ["status", "../evil", "--db", "sqlite:///elsewhere.db"],
    ],
)
def test_every_command_refuses_a_name_that_is_not_a_study_name(
    args: list[str], here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_study(here, "evil", study_dir=here / "evil")  # = paretune-runs/../evil/paretune.db
    error = _error(args, capsys)
    assert "study name '../evil': must be 1-100 letters" in error
    assert not (here / "paretune-runs").exists()
    assert not (here / "elsewhere.db").exists()


def test_ls_and_report_all_skip_an_unreadable_database(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_study(here, "first")
    _make_study(here, "second", status="RUNNING")
    junk = here / "paretune-runs" / "junk"
    junk.mkdir(parents=True)
    (junk / "paretune.db").write_bytes(bytes(range(256)) * 64)
    main(["ls"])
    captured = capsys.readouterr()
    assert "first" in captured.out and "second" in captured.out
    assert captured.err.count("skipped") == 1 and "junk/paretune.db" in captured.err
    main(["report", "--all"])
    captured = capsys.readouterr()
    assert captured.out.count("report: ") == 2
    assert (here / "paretune-runs" / "first" / "report" / "report.html").is_file()
    assert (here / "paretune-runs" / "second" / "report" / "report.html").is_file()
    assert captured.err.count("skipped") == 1
    assert "give a study name or --all" in _error(["report"], capsys)


def test_a_stopped_driver_is_visible(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _make_study(here, "stopped", status="RUNNING")
    main(["status", "stopped"])
    out = " ".join(capsys.readouterr().out.split())
    assert re.search(r"driver not running since .* run 'paretune resume stopped'", out), out

    with ResultStore(url) as store:
        store.acquire_lease("stopped", stale_after_s=30)  # this process: a live driver
        main(["status", "stopped"])
        assert "driver not running" not in capsys.readouterr().out
        error = _error(["resume", "stopped"], capsys)
        assert re.search(r"study 'stopped' is being driven by host .*, pid \d+", error)
        store.run(lambda s: s.execute(update(DriverLeaseRow).values(pid=2**22 + 1)), write=True)
    main(["ls"])
    out = " ".join(capsys.readouterr().out.split())
    assert "RUNNING (no driver)" in out
    assert "stopped: driver not running since" in out


def test_run_with_a_changed_config_lists_the_changes_and_refuses(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_study(here, "taken")
    path = here / "taken.yaml"
    error = _error(["run", str(path)], capsys)
    assert "already exists" in error and "paretune resume taken" in error
    changed = yaml.safe_load(path.read_text())
    changed["budget"]["iterations"] = 24
    changed["methods"].append({"name": "random"})
    path.write_text(yaml.safe_dump(changed))
    error = _error(["run", str(path)], capsys)
    assert "with another config (stored -> new)" in error
    assert "budget.iterations: 12 -> 24" in error
    assert "methods[2].name: None -> 'random'" in error


def test_resume_with_a_config_may_only_add_trials(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_study(here, "grow")
    path = here / "grow.yaml"
    changed = yaml.safe_load(path.read_text())
    changed["budget"]["iterations"] = 24
    path.write_text(yaml.safe_dump(changed))
    error = _error(["resume", "grow", "--config", str(path)], capsys)
    assert "differs from the stored config" in error
    assert "budget.iterations: 12 -> 24" in error
    fewer = yaml.safe_load(path.read_text())
    fewer["budget"] = {**fewer["budget"], "iterations": 12, "trials_per_method": 1}
    path.write_text(yaml.safe_dump(fewer))
    error = _error(["resume", "grow", "--config", str(path)], capsys)
    assert "budget.trials_per_method: 2 -> 1" in error


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        (
            "metric:segment_semantic:mIoU",
            "unknown segment_semantic metric 'mIoU'; choose one of: miou, pixel_acc",
        ),
        ("delta:segmentation", "unknown task 'segmentation'.*'segment_semantic'"),
    ],
)
def test_objectives_must_name_what_the_trials_report(
    objective: str, message: str, here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = here / "bad.yaml"
    config = _config("bad", objectives=[[objective, "maximize"], ["sparsity", "maximize"]])
    path.write_text(yaml.safe_dump(config))
    error = " ".join(_error(["run", str(path)], capsys).split())
    assert re.search(message, error), error
    assert not (here / "paretune-runs" / "bad").exists()


def test_status_of_a_running_study_shows_its_trials_in_progress(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from study._live import StudyProgress, write_progress

    url = _make_study(here, "busy", status="RUNNING")
    now = [0.0]
    model = StudyProgress("busy", lambda: now[0])
    model.add_run(("magnitude", 0), "magnitude (seed 0)", 4, done=1, iterations=300)
    model.start(("magnitude", 0), "t2", 2)
    model.start(("magnitude", 0), "t3", 3)
    for now[0], iteration in ((1.0, 10), (11.0, 110)):
        model.step(("magnitude", 0), "t2", iteration)
    folder = here / "paretune-runs" / "busy"
    write_progress(folder, model.snapshot())
    with ResultStore(url) as store:
        store.acquire_lease("busy", stale_after_s=30)  # this process: a live driver
        main(["status", "busy"])
        out = capsys.readouterr().out
        store.run(lambda s: s.execute(update(DriverLeaseRow).values(pid=2**22 + 1)), write=True)
    assert re.search(r"in progress \(driver's progress file, \d+s ago\): 1/4 trials done", out)
    # 190 + 300 iterations left of the running trials, 300 of the one waiting, at 10 it/s
    eta = re.search(r"10\.0 it/s · ETA 1m(\d\d)s", out)
    assert eta is not None and 10 <= int(eta.group(1)) <= 19, out
    assert "magnitude (seed 0): #2 110/300 it" in out
    assert "magnitude (seed 0): #3 starting" in out
    main(["status", "busy"])  # no progress from a driver that died
    out = capsys.readouterr().out
    assert "in progress" not in out and "driver not running" in " ".join(out.split())
    write_progress(folder, model.snapshot(active=False))
    with ResultStore(url) as store:
        store.acquire_lease("busy", stale_after_s=30)  # taken over from the dead one
        main(["status", "busy"])
        assert "in progress" not in capsys.readouterr().out  # the file's run has ended


def test_exports_go_to_the_study_folder_unless_out_says_otherwise(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_study(here, "exported")
    main(["export", "exported", "--format", "csv"])
    written = here / "paretune-runs" / "exported" / "exports" / "exported-trials.csv"
    out = " ".join(capsys.readouterr().out.split())
    assert written.is_file() and f"to {written}" in out
    assert not list(here.glob("*.csv"))  # nothing in the working directory
    assert written.read_text().splitlines()[0].startswith("study,method,trial_id,")
    main(["export", "exported", "--format", "json", "--out", "mine/t.json"])
    assert (here / "mine" / "t.json").is_file()
    assert f"to {here / 'mine' / 't.json'}" in " ".join(capsys.readouterr().out.split())


def test_read_commands_run_without_cyclic_collection_and_restore_it(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    import study._commands

    _make_study(here, "quiet")
    seen: list[bool] = []
    original = study._commands.status_command

    def watched(*args: object) -> None:
        seen.append(gc.isenabled())
        original(*args)

    monkeypatch.setattr(study._commands, "status_command", watched)
    frozen = gc.get_freeze_count()
    main(["status", "quiet"])
    assert "study quiet (COMPLETE)" in " ".join(capsys.readouterr().out.split())
    assert seen == [False] and gc.isenabled()
    assert gc.get_freeze_count() == frozen  # main(argv) in a process that goes on: no freeze
    with pytest.raises(SystemExit):
        main(["status", "../evil"])
    assert gc.isenabled()  # restored after an error too
