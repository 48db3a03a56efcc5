from __future__ import annotations

import json
import subprocess
import sys

import pytest

from study.cli import main

TINY_DATA = [
    *("--data-option", "resolution=32", "--data-option", "num_train=48"),
    *("--data-option", "num_val=16", "--data-option", "num_test=16"),
]
TINY_RUN = [
    *("--model-option", "width=8", "--head-option", "hidden=8", "--iterations", "8"),
    *("--batch-size", "4", "--threads", "1"),
]
TINY = [*TINY_DATA, *TINY_RUN]


def test_trial_writes_json_and_fills_delta_t_from_reference(tmp_path, capsys):
    dense = tmp_path / "dense.json"
    main(["trial", *TINY, "--json", str(dense)])
    data = json.loads(dense.read_text())
    assert data["method"] == "dense" and data["iterations"] == 8 and data["seed"] == 0
    assert set(data["metrics"]) == {"segment_semantic", "depth_zbuffer", "normal"}
    assert data["sparsity"]["overall"] == 0.0
    assert "backbone" in data["sparsity"]["components"]
    assert data["delta_t"] is None and data["wall_time_s"] > 0
    again = tmp_path / "again.json"
    main(["trial", *TINY, "--json", str(again), "--reference", str(dense)])
    assert json.loads(again.read_text())["delta_t"] == pytest.approx(0.0)
    out = capsys.readouterr().out
    assert "miou" in out and "sparsity" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "adapmt"], "unknown method 'adapmt'.*did you mean 'adapmtl'"),
        (["--iterations", "0"], "iterations"),
        (["--dataset", "nyuv2", "--dataset-root", "/no/such/folder"], "/no/such/folder"),
        (["--reference", "/no/such.json"], "--reference: file /no/such.json does not exist"),
        (["--param", "oops"], "--param: expected KEY=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "study.cli",
            "trial",
            *TINY_RUN,
            *([] if "--dataset" in args else TINY_DATA),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    import re

    assert re.search(message, lines[0]), lines[0]


def test_models_lists_every_backbone_with_parameter_counts(capsys, monkeypatch):
    from study._console import console
    from trials.models import BACKBONES

    monkeypatch.setattr(console, "width", 80)  # a default terminal: no name cut short
    main(["models"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    for backbone in BACKBONES.names():
        assert f" {backbone} " in out
    assert "…" not in out
    assert " 21.3M " in out  # deeplab-resnet34's backbone: 21,284,672 parameters


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "magnitude", "--target-sparsity", "1.5"], "target_sparsity"),
        (["--method", "magnitude", "--param", "rate=2"], "has no parameter 'rate'"),
        (["--data-option", "tasks=[nope]"], "nope"),
        (["--method", "adapmtl", "--param", "threshold_init_tasks={nope: 1}"], "nope"),
    ],
)
def test_trial_validates_everything_before_training(args, message, capsys):
    """A bad parameter, task or grouping is one error line before any progress bar."""
    with pytest.raises(SystemExit) as stop:
        main(["trial", *TINY, *args])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert " it " not in captured.out and "loss" not in captured.out, captured.out
