"""The paper-scale example configs: they load, say what the paper did, and validate against
fabricated data folders of the right layout; ``paretune check`` passes them on this machine
except for the GPUs it does not have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from study._commands import validate_study
from study._config import StudyConfig, parse_config
from study.cli import main
from tests.fabricate import nyuv2_folder, taskonomy_folder, torchvision_resnet34
from trials import TrialConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TABLE2_METHODS = ["adapmtl", "disparse-dynamic", "snip", "imp", "lth"]


def _load(name: str, data: Path, tmp_path: Path, **changes: Any) -> StudyConfig:
    """An example with its EDIT paths pointed at fabricated files."""
    raw = yaml.safe_load((EXAMPLES / name).read_text())
    weights = tmp_path / "resnet34-imagenet.pth"
    torch.save(torchvision_resnet34(), weights)
    raw["dataset"]["root"] = str(data)
    raw["reference"]["init"] = str(weights)
    raw["study_dir"] = str(tmp_path / "runs" / raw["name"])
    raw.update(changes)
    return parse_config(raw)


def test_nyuv2_table2_is_the_papers_setup(tmp_path: Path) -> None:
    data = nyuv2_folder(tmp_path / "nyuv2", train=4, val=2, size=(24, 32))
    config = _load("nyuv2_table2.yaml", data, tmp_path)
    assert config.dataset.options == {"num_classes": 13, "augment": {"crop": 321}}
    assert (config.model.backbone, config.model.head) == ("deeplab-resnet34", "aspp")
    assert [spec.name for spec in config.methods] == TABLE2_METHODS
    assert config.budget.sparsity_levels == [0.9] and config.budget.seeds == [0, 1, 2]
    assert config.storage is not None and config.storage.startswith("postgresql+psycopg://")
    assert config.init == "dense" and config.reference.init.endswith("resnet34-imagenet.pth")
    trial = TrialConfig(**config.trial_config("adapmtl", {}, 0))
    assert (trial.iterations, trial.batch_size, trial.lr) == (20000, 16, 1e-3)
    assert trial.adam_betas == (0.5, 0.999)
    assert round(trial.lr_step_fraction * trial.iterations) == 4000 and trial.lr_gamma == 0.5
    assert trial.gpu_memory_fraction == 0.5 and trial.amp and trial.channels_last
    assert trial.loader.num_workers == 6 and trial.method_params["target_sparsity"] == 0.9
    reference = TrialConfig(**config.trial_config("dense", {}, 1))
    assert reference.init == config.reference.init and reference.iterations == 20000
    validate_study(config)  # every trial, the data folder and the objectives


def test_taskonomy_is_the_references_schedule(tmp_path: Path) -> None:
    data = taskonomy_folder(tmp_path / "taskonomy", size=(24, 32))
    config = _load("taskonomy.yaml", data, tmp_path)
    options = config.dataset.options
    assert options["resolution"] == 256 and options["augment"] == {"crop": 224}
    assert [spec.name for spec in config.methods] == TABLE2_METHODS
    trial = TrialConfig(**config.trial_config("lth", {}, 2))
    assert (trial.iterations, trial.batch_size, trial.lr) == (100000, 16, 1e-4)
    assert round(trial.lr_step_fraction * trial.iterations) == 12000 and trial.lr_gamma == 0.3
    assert trial.adam_betas == (0.5, 0.999) and trial.gpu_memory_fraction == 0.5
    validate_study(config)


@pytest.mark.slow
def test_check_passes_the_table2_config_but_for_the_gpus(tmp_path: Path, capsys) -> None:
    from trials._device import visible_gpus

    if visible_gpus():
        pytest.skip("this machine has a GPU")
    data = nyuv2_folder(tmp_path / "nyuv2", train=4, val=2, size=(24, 32))
    config = _load("nyuv2_table2.yaml", data, tmp_path, storage=None)
    path = tmp_path / "table2.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    with pytest.raises(SystemExit) as stopped:
        main(["check", str(path), "--no-estimate", "--samples", "2"])
    assert stopped.value.code == 2
    out = capsys.readouterr().out
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failures == [
        "FAIL  resources: too few GPUs: a trial needs 0.5 GPU (resources.gpus_per_trial) but "
        "the largest machine has 0"
    ]
    assert "train 4 samples (2 read): image 3x321x321" in out
    assert "val 2 samples (2 read): image 3x321x321" in out
