"""The study config: defaults, validation messages (one line each), YAML loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from search_spaces import Fixed
from study import ConfigError, StudyConfig, load_config, parse_config
from trials.errors import ParetuneError

BASE: dict[str, Any] = {"name": "demo", "methods": [{"name": "adapmtl"}, {"name": "dense"}]}


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def test_quickstart_example_is_valid(repo_root: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(repo_root / "examples" / "quickstart.yaml")
    assert [m.name for m in config.methods] == ["adapmtl", "magnitude", "disparse", "dense"]
    assert config.dataset.name == "scenes-nyu"
    assert (config.model.backbone, config.model.head) == ("resnet-tiny", "light")
    assert config.budget.iterations == 300 and config.budget.seeds == [0]
    assert config.budget.trials_per_method == 4
    assert config.budget.sparsity_levels == [0.7, 0.9]
    assert config.levels_for("adapmtl") == config.levels_for("disparse") == (0.7, 0.9)
    assert config.init == "dense"
    assert config.trials_for("dense") == 1
    assert config.trials_for("adapmtl") == config.budget.trials_per_method
    assert config.resources.max_concurrent == 2 and config.resources.cpus_per_trial == 1
    assert config.study_dir == str(tmp_path / "paretune-runs" / "quickstart")
    assert config.storage_url() == f"sqlite:///{tmp_path}/paretune-runs/quickstart/paretune.db"


def test_compare_example_is_the_quickstart_with_three_seeds(repo_root: Path, monkeypatch):
    monkeypatch.chdir(repo_root)
    quick = load_config(repo_root / "examples" / "quickstart.yaml")
    compare = load_config(repo_root / "examples" / "compare.yaml")
    assert compare.budget.seeds == [0, 1, 2]
    assert compare.budget.sparsity_levels == quick.budget.sparsity_levels
    assert [m.run_name for m in compare.methods] == [m.run_name for m in quick.methods]


def test_defaults(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = parse_config(BASE)
    assert config.budget.trials_per_method == 8
    assert config.budget.iterations == 300
    assert config.budget.batch_size == 16 and config.budget.eval_every is None
    assert config.resources.gpus_per_trial == 0 and config.resources.max_failures == 1
    assert config.sampler.name == "tpe" and config.sampler.seed == 0
    assert config.objectives == [("delta_t", "maximize"), ("sparsity", "maximize")]
    assert config.reference.enabled is True
    assert config.ray_address is None and config.storage is None
    assert Path(config.study_dir).is_absolute()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            with_(budget={"trials_per_method": 0}),
            r"^budget\.trials_per_method: must be > 0 \(got 0\)$",
        ),
        (
            with_(budget={"iterations": 2.5}),
            r"^budget\.iterations: must be an integer \(got 2\.5\)$",
        ),
        (with_(budget={"iterations": True}), r"^budget\.iterations: must be an integer"),
        (with_(budget={"seeds": []}), r"^budget\.seeds: must have at least 1 item"),
        (with_(budget={"seeds": [0, 0]}), r"^budget\.seeds: seed 0 is listed twice$"),
        (
            with_(budget={"trails": 3}),
            r"^unknown key 'trails' in budget; choose one of: batch_size, eval_every, flops, "
            r"iterations, seconds, seeds, sparsity_levels, trials_per_method, unit",
        ),
        (
            with_(methods=[{"name": "dense"}, {"name": "adapmt"}]),
            r"^methods\[1\]\.name: unknown method 'adapmt'; choose one of: .*dense.*"
            r"\(did you mean 'adapmtl'\?\)$",
        ),
        (with_(methods=[]), r"^methods: must have at least 1 item"),
        (
            with_(methods=[{"name": "dense"}, {"name": "dense"}]),
            r"^methods: method 'dense' is listed twice$",
        ),
        (
            with_(methods=[{"name": "adapmtl", "search_space": {"thresh": 1}}]),
            r"^methods\[0\]\.search_space: unknown adapmtl parameter 'thresh'; choose one of",
        ),
        (
            with_(methods=[{"name": "adapmtl", "search_space": {"threshold_lr": [0.1, 0.01]}}]),
            r"^methods\[0\]\.search_space: range for 'threshold_lr' has low 0\.1 > high 0\.01$",
        ),
        (
            with_(methods=[{"name": "adapmtl", "params": {"temperature": 2}}]),
            r"^methods\[0\]\.params: 'temperature' is a search-space parameter of 'adapmtl'",
        ),
        (
            with_(methods=[{"name": "adapmtl", "trials": 0}]),
            r"^methods\[0\]\.trials: must be > 0 \(got 0\)$",
        ),
        (
            with_(methods=[{"name": "adapmtl", "searchspace": {}}]),
            r"^unknown key 'searchspace' in methods\[0\].*\(did you mean 'search_space'\?\)$",
        ),
        (
            with_(sampler={"name": "tpee"}),
            r"^sampler\.name: unknown sampler 'tpee'; choose one of: gp, nsga2, random, tpe "
            r"\(did you mean 'tpe'\?\)$",
        ),
        (
            with_(resources={"cpus_per_trial": 0}),
            r"^resources\.cpus_per_trial: must be > 0 \(got 0\)$",
        ),
        (
            with_(resources={"gpus_per_trial": -0.5}),
            r"^resources\.gpus_per_trial: must be >= 0 \(got -0\.5\)$",
        ),
        (with_(resources={"max_concurrent": 0}), r"^resources\.max_concurrent: must be > 0"),
        (
            with_(objectives=[["delta_t", "max"]]),
            r"^objectives\[0\]\[1\]: must be 'maximize' or 'minimize' \(got 'max'\)$",
        ),
        (
            with_(objectives=[["dleta_t", "maximize"]]),
            r"^objectives: unknown objective 'dleta_t'.*\(did you mean 'delta_t'\?\)",
        ),
        (with_(objectives=[]), r"^objectives: must have at least 1 item"),
        (with_(trainer={"seed": 3}), r"^trainer: 'seed' is set by the study; use budget\.seeds$"),
        (with_(name="my study"), r"^name: must be 1-100 letters, digits"),
        (with_(tasks=[]), r"^tasks: must list at least one task"),
        (with_(budget=3), r"^budget: must be a mapping \(got 3\)$"),
        (with_(colour="red"), r"^unknown key 'colour' in the study config; choose one of"),
        ({"methods": [{"name": "dense"}]}, r"^name: is required$"),
        (
            with_(dataset={"root": "/no/such/folder"}),
            r"^dataset\.root: folder /no/such/folder does not exist$",
        ),
        (
            with_(scheduler={"name": "asha"}),
            r"^scheduler\.name: unknown scheduler 'asha'; choose one of: fifo, mo-asha "
            r"\(did you mean 'mo-asha'\?\)$",
        ),
        (
            with_(scheduler={"name": "mo-asha", "grace_period": 300}),
            r"^scheduler\.grace_period: must be < budget\.iterations \(300\) \(got 300\)$",
        ),
        (
            with_(scheduler={"name": "mo-asha", "eta": 1}),
            r"^scheduler\.eta: must be >= 2 \(got 1\)$",
        ),
        (
            with_(scheduler={"name": "mo-asha", "grace_period": 0}),
            r"^scheduler\.grace_period: must be > 0 \(got 0\)$",
        ),
        (
            with_(scheduler={"name": "mo-asha"}, budget={"unit": "flops", "flops": 1e12}),
            r"^scheduler\.name: mo-asha needs budget\.unit 'iterations'.*\(got 'flops'\)$",
        ),
        (
            with_(budget={"unit": "joules"}),
            r"^budget\.unit: must be 'iterations', 'flops' or 'seconds' \(got 'joules'\)$",
        ),
        (
            with_(budget={"unit": "flops"}),
            r"^budget\.flops: is required when budget\.unit is 'flops'$",
        ),
        (
            with_(budget={"seconds": 60}),
            r"^budget\.seconds: is set but budget\.unit is 'iterations' "
            r"\(set unit: seconds to use it\)$",
        ),
        (
            with_(budget={"unit": "seconds", "seconds": 0}),
            r"^budget\.seconds: must be > 0 \(got 0\)$",
        ),
    ],
)
def test_errors_are_one_line_naming_field_rule_and_value(data, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(data)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ParetuneError)  # the CLI prints it as one line


def test_storage_password_never_shown():
    url = "postgresql+psycopg://paretune:hunter2@db.example:5432/runs"
    config = parse_config(with_(storage=url))
    assert config.storage_url() == url
    assert config.redacted_storage_url() == "postgresql+psycopg://paretune:***@db.example:5432/runs"
    assert "hunter2" not in str(config.public_dict())
    with pytest.raises(ConfigError, match=r"^storage: invalid database URL") as caught:
        parse_config(with_(storage="postgresql+psycopg://u:hunter2@host:port/db"))
    assert "hunter2" not in str(caught.value)


def test_paths_become_absolute(tmp_path: Path, monkeypatch):
    (tmp_path / "nyuv2").mkdir()
    monkeypatch.chdir(tmp_path)
    config = parse_config(with_(dataset={"name": "nyuv2", "root": "nyuv2"}, study_dir="out"))
    assert config.dataset.root == str(tmp_path / "nyuv2")
    assert config.study_dir == str(tmp_path / "out")
    assert config.storage_url() == f"sqlite:///{tmp_path}/out/paretune.db"
    # a dumped config validates again to the same thing (workers receive it as data)
    assert StudyConfig.model_validate(config.model_dump()) == config


def test_method_space_and_trial_config():
    config = parse_config(
        with_(
            methods=[
                {
                    "name": "adapmtl",
                    "search_space": {"target_sparsity": 0.95, "temperature": [0.5, 2.0]},
                    "params": {"window": 20},
                    "trials": 3,
                }
            ],
            trainer={"lr": 1e-3, "optimizer": "sgd"},
            budget={"iterations": 50, "batch_size": 8, "eval_every": 10, "seeds": [1, 2]},
            tasks=["segment_semantic", "depth_euclidean"],
        )
    )
    space = config.method("adapmtl").space()
    assert isinstance(space["target_sparsity"], Fixed)
    assert "target_sparsity" not in space.to_optuna()
    assert config.trials_for("adapmtl") == 3
    trial = config.trial_config("adapmtl", {"temperature": 1.5}, seed=2)
    assert trial["method"] == "adapmtl" and trial["seed"] == 2
    assert trial["method_params"]["target_sparsity"] == 0.95
    assert trial["method_params"]["temperature"] == 1.5
    assert trial["method_params"]["window"] == 20
    assert trial["iterations"] == 50 and trial["batch_size"] == 8 and trial["eval_every"] == 10
    assert trial["lr"] == 1e-3 and trial["optimizer"] == "sgd"
    assert trial["tasks"] == ["segment_semantic", "depth_euclidean"]
    with pytest.raises(ConfigError, match=r"unknown method 'magnitude'; choose one of: adapmtl"):
        config.method("magnitude")


def test_sparsity_levels_fix_the_pruners_target_sparsity():
    config = parse_config(
        with_(
            methods=[{"name": "adapmtl"}, {"name": "dmtg"}, {"name": "dense"}],
            budget={"trials_per_method": 4, "sparsity_levels": [0.7, 0.9]},
        )
    )
    assert config.levels_for("adapmtl") == (0.7, 0.9)
    assert config.levels_for("dmtg") == () and config.levels_for("dense") == ()
    space = config.method_space("adapmtl")
    assert space["target_sparsity"].to_dict() == {
        "type": "categorical",
        "choices": [0.7, 0.9],
        "default": 0.7,
    }
    assert "target_sparsity" not in config.method_space("dmtg")
    assert config.trial_config("adapmtl", {}, seed=0)["method_params"]["target_sparsity"] == 0.7


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budget": {"sparsity_levels": [0.5, 1.0]}}, r"0 < level < 1 \(got 1\.0\)"),
        ({"budget": {"sparsity_levels": [0.5, 0.5]}}, r"level 0\.5 is listed twice"),
        (
            {"budget": {"trials_per_method": 5, "sparsity_levels": [0.7, 0.9]}},
            r"'adapmtl': 5 trials do not spread evenly over 2 sparsity levels; use 4 or 6",
        ),
        (
            {
                "methods": [{"name": "magnitude", "search_space": {"target_sparsity": 0.8}}],
                "budget": {"trials_per_method": 2, "sparsity_levels": [0.7, 0.9]},
            },
            r"method 'magnitude' sets target_sparsity while budget\.sparsity_levels",
        ),
    ],
)
def test_sparsity_levels_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(with_(**changes))
    assert "\n" not in str(caught.value)


def test_trial_config_is_a_valid_trial_config():
    trials_config = pytest.importorskip("trials._config")
    config = parse_config(with_(trainer={"lr": 1e-3}))
    for method in ("adapmtl", "dense"):
        trial = trials_config.TrialConfig(**config.trial_config(method, {}, seed=0))
        assert trial.method == method and trial.iterations == 300


def test_objectives_accept_mappings_and_metric_columns():
    config = parse_config(
        with_(
            objectives=[
                {"name": "metric:segment_semantic:miou", "direction": "maximize"},
                ["parameters", "minimize"],
            ]
        )
    )
    assert config.objectives == [
        ("metric:segment_semantic:miou", "maximize"),
        ("parameters", "minimize"),
    ]


def test_load_config_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^config file .*missing\.yaml does not exist$"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: demo\nmethods: [dense\nbudget: {}\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML at line \d+, column \d+"):
        load_config(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match=r"^config file .*empty\.yaml is empty$"):
        load_config(empty)
    listed = tmp_path / "list.yaml"
    listed.write_text("- dense\n")
    with pytest.raises(
        ConfigError,
        match=r"^a study config must be a mapping of settings "
        r"\(got list\)$",
    ):
        load_config(listed)


def test_load_config_reports_the_first_validation_error(tmp_path: Path):
    path = tmp_path / "study.yaml"
    path.write_text("name: demo\nmethods:\n  - name: dense\nbudget:\n  trials_per_method: 0\n")
    with pytest.raises(ConfigError, match=r"^budget\.trials_per_method: must be > 0 \(got 0\)$"):
        load_config(path)


def test_fractional_gpus_cap_each_trials_memory_share():
    from study._config import parse_config
    from trials._config import TrialConfig

    config = parse_config(
        {"name": "g", "methods": [{"name": "adapmtl"}], "resources": {"gpus_per_trial": 0.25}}
    )
    fields = config.trial_config("adapmtl", {}, seed=0)
    assert TrialConfig(**fields).gpu_memory_fraction == 0.25
    whole = parse_config(
        {"name": "g", "methods": [{"name": "adapmtl"}], "resources": {"gpus_per_trial": 1}}
    )
    assert "gpu_memory_fraction" not in whole.trial_config("adapmtl", {}, seed=0)


def test_scheduler_defaults_to_no_early_stopping():
    config = parse_config(BASE)
    assert (config.scheduler.name, config.scheduler.grace_period, config.scheduler.eta) == (
        "fifo",
        80,
        3,
    )
    chosen = parse_config(with_(scheduler={"name": "mo-asha", "grace_period": 40, "eta": 2}))
    assert (chosen.scheduler.name, chosen.scheduler.grace_period) == ("mo-asha", 40)


@pytest.mark.parametrize(
    ("budget", "field", "value"),
    [
        ({"unit": "flops", "flops": 2.5e12}, "max_flops", 2.5e12),
        ({"unit": "seconds", "seconds": 90}, "max_seconds", 90.0),
    ],
)
def test_flops_and_seconds_budgets_reach_the_trial_config(budget, field, value):
    from trials._config import TrialConfig

    config = parse_config(with_(budget=budget))
    fields = config.trial_config("adapmtl", {}, seed=0)
    assert fields[field] == value
    other = ({"max_flops", "max_seconds"} - {field}).pop()
    assert other not in fields
    trial = TrialConfig(**fields)
    assert getattr(trial, field) == value
    assert "max_flops" not in parse_config(BASE).trial_config("adapmtl", {}, seed=0)
    with pytest.raises(ConfigError, match=r"^trainer: 'max_flops' is set by the study; use budget"):
        parse_config(with_(trainer={"max_flops": 1e9}))
