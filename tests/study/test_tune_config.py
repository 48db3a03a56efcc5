"""What travels in a Tune trial's config: encoded by the router, decoded everywhere else."""

from __future__ import annotations

from study._tune_config import (
    FIXED_KEY,
    ROUTE_KEY,
    TrialRoute,
    encode,
    route_of,
    searched_params,
    trial_fields,
)


def test_a_config_round_trips_its_route_fields_and_parameters() -> None:
    route = TrialRoute("adapmtl", 2, board="b", objectives=("delta_t", "sparsity"))
    fields = {"method": "adapmtl", "seed": 2, "method_params": {"temperature": 1.0}}
    config = encode(fields, route, {"lr": 0.01, "target_sparsity": 0.9})
    assert route_of(config) == route
    assert searched_params(config) == {"lr": 0.01, "target_sparsity": 0.9}
    decoded = trial_fields(config)
    assert decoded["lr"] == 0.01  # a TrialConfig field is set as such
    assert decoded["method_params"] == {"temperature": 1.0, "target_sparsity": 0.9}
    assert fields["method_params"] == {"temperature": 1.0}  # the router's copy is untouched


def test_a_config_without_a_route_takes_method_and_seed_from_its_fields() -> None:
    config = {FIXED_KEY: {"method": "snip", "seed": 4}}
    assert route_of(config) == TrialRoute("snip", 4)
    assert ROUTE_KEY not in config


def test_trial_resources_unpickle_in_a_worker_without_the_driver_modules() -> None:
    """Tune pickles the resources function with the trainable into every worker."""
    import pickle
    import subprocess
    import sys

    from study._tune_config import TrialResources

    resources = TrialResources(cpus=1.0, gpus=0.5, reference_slots=2)
    reference = encode({"method": "dense", "seed": 0}, TrialRoute("dense", 0, reference=True), {})
    assert resources(reference) == {"cpu": 2.0, "gpu": 0.5}
    probe = (
        "import pickle, sys\n"
        f"resources = pickle.loads({pickle.dumps(resources)!r})\n"
        "heavy = ('study._runner', 'sqlalchemy', 'optuna', 'torch', 'pandas')\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
