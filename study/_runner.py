"""Runs a study: the dense reference first, then one Ray Tune run per method and seed."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study._trainable import FIXED_KEY

if TYPE_CHECKING:
    import optuna
    from rich.progress import Progress

    from search_spaces import SearchSpace
    from study._config import StudyConfig
    from study.store import BaseResultStore

logger = logging.getLogger(__name__)

REFERENCE_METHOD = "dense"
INTERRUPTED = "interrupted: the study driver stopped before this trial finished"
OBJECTIVE_MODES = {"maximize": "max", "minimize": "min"}


def package_versions() -> dict[str, str | None]:
    """Versions of paretune and the libraries a result depends on (no torch import)."""
    versions: dict[str, str | None] = {}
    for name in ("paretune", "torch", "ray", "optuna"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@dataclass(frozen=True)
class MethodPlan:
    """One method run: a method with its search space, for one seed."""

    method: str
    seed: int
    space: SearchSpace
    trials: int

    @property
    def label(self) -> str:
        return f"{self.method} (seed {self.seed})"


def plan_methods(config: StudyConfig) -> list[MethodPlan]:
    """The study's method runs in order; the dense reference is planned separately."""
    plans = []
    for seed in config.budget.seeds:
        for spec in config.methods:
            if spec.name == REFERENCE_METHOD:
                continue
            plans.append(MethodPlan(spec.name, seed, spec.space(), config.trials_for(spec.name)))
    return plans


def optuna_study_name(study: str, method: str, seed: int) -> str:
    return f"{study}/{method}/seed-{seed}"


def optuna_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage in the results database (same URL, its own tables)."""
    import optuna

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Runs the block in ``path``: Ray adds the driver's working directory to its workers'
    import path, where a user's own ``trials/`` or ``study/`` folder would shadow ours."""
    previous = Path.cwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class StudyRunner:
    """Drives one study from its validated config; the store's only writer."""

    def __init__(
        self,
        config: StudyConfig,
        store: BaseResultStore,
        storage_url: str,
        *,
        verbose: bool = False,
    ):
        self.config = config
        self.store = store
        self.verbose = verbose
        self.versions = package_versions()
        self.study_dir = Path(str(config.study_dir)).resolve()
        self.storage_url = storage_url
        self._optuna_storage: optuna.storages.BaseStorage | None = None

    # -- set-up ------------------------------------------------------------------------
    def create(self) -> None:
        """Records the study; fails if a study of that name exists."""
        self.store.create_study(
            self.config.name,
            self.config.public_dict(),
            [tuple(o) for o in self.config.objectives],
            versions=self.versions,
        )

    def reconcile(self) -> int:
        """After a killed driver: its RUNNING trials become FAILED (store and Optuna)."""
        from study._search import fail_running_trials

        changed = self.store.mark_running_as_failed(self.config.name, INTERRUPTED)
        for plan in plan_methods(self.config):
            name = optuna_study_name(self.config.name, plan.method, plan.seed)
            changed += fail_running_trials(self._optuna(), name)
        return changed

    def _optuna(self) -> optuna.storages.BaseStorage:
        if self._optuna_storage is None:
            self._optuna_storage = optuna_storage(self.storage_url)
        return self._optuna_storage

    # -- running -----------------------------------------------------------------------
    def run(self, progress: Progress) -> None:
        """Runs whatever the study still lacks: references, then every method run."""
        from study._ray import start_ray

        self.store.set_study_status(self.config.name, "RUNNING")
        with working_directory(self.study_dir):
            start_ray(self.config.ray_address, verbose=self.verbose, env=self._worker_env())
            references = {
                seed: self._reference(seed, progress) for seed in self.config.budget.seeds
            }
            for plan in plan_methods(self.config):
                self._method_run(plan, references[plan.seed], progress)
        self.store.set_study_status(self.config.name, "COMPLETE")

    def _worker_env(self) -> dict[str, str]:
        keep = ("PARETUNE_CACHE", "CUBLAS_WORKSPACE_CONFIG")
        return {name: os.environ[name] for name in keep if name in os.environ}

    def _reference(self, seed: int, progress: Progress) -> dict[str, dict[str, float]] | None:
        """Metrics of the dense reference for ``seed``, training it first if needed."""
        if not self.config.reference.enabled:
            return None
        name = self.config.name
        run_id = self.store.start_method_run(name, REFERENCE_METHOD, seed)
        existing = self.store.reference_trial(name, seed)
        if existing is None:
            fields = self.config.trial_config(REFERENCE_METHOD, {}, seed)
            self._tune(
                run_id,
                fields,
                None,
                1,
                f"{REFERENCE_METHOD} (seed {seed})",
                progress,
                is_reference=True,
                done=0,
            )
            existing = self.store.reference_trial(name, seed)
        self.store.finish_method_run(run_id, "COMPLETE" if existing else "FAILED")
        if existing is None:
            raise RuntimeError(
                f"the dense reference trial for seed {seed} failed; see 'paretune status {name}'"
            )
        return existing.metrics

    def _finished_count(self, plan: MethodPlan) -> int:
        trials = self.store.trials_of(self.config.name, method=plan.method, seed=plan.seed)
        return sum(
            t.status == "COMPLETE" or (t.status == "FAILED" and t.error != INTERRUPTED)
            for t in trials
        )

    def _method_run(
        self, plan: MethodPlan, reference: dict[str, Any] | None, progress: Progress
    ) -> None:
        from study._search import StudySearch, build_sampler

        name = optuna_study_name(self.config.name, plan.method, plan.seed)
        run_id = self.store.start_method_run(
            self.config.name,
            plan.method,
            plan.seed,
            search_space=plan.space.to_dict(),
            optuna_study_name=name,
        )
        done = self._finished_count(plan)
        remaining = plan.trials - done
        if remaining > 0:
            sampler_spec = self.config.sampler
            objectives = self.config.objectives
            search = StudySearch(
                space=plan.space.to_optuna(),
                metric=[objective for objective, _ in objectives],
                mode=[OBJECTIVE_MODES[direction] for _, direction in objectives],
                sampler=build_sampler(
                    sampler_spec.name, sampler_spec.seed + plan.seed, sampler_spec.options
                ),
                study_name=name,
                storage=self._optuna(),
            )
            fields = self.config.trial_config(plan.method, {}, plan.seed)
            fields["reference"] = reference
            self._tune(
                run_id,
                fields,
                search,
                remaining,
                plan.label,
                progress,
                done=done,
                total=plan.trials,
            )
        complete = self._finished_count(plan) >= plan.trials
        self.store.finish_method_run(run_id, "COMPLETE" if complete else "FAILED")

    def _tune(
        self,
        run_id: int,
        fields: dict[str, Any],
        search: Any,
        samples: int,
        label: str,
        progress: Progress,
        *,
        is_reference: bool = False,
        done: int = 0,
        total: int | None = None,
    ) -> None:
        from ray import tune

        from study._progress import ProgressView
        from study._recorder import StoreRecorder
        from study._trainable import run_tune_trial

        resources = self.config.resources
        recorder = StoreRecorder(
            self.store,
            run_id,
            search=search,
            cpus=resources.cpus_per_trial,
            gpus=resources.gpus_per_trial,
            versions=self.versions,
            is_reference=is_reference,
        )
        view = ProgressView(progress, label, total or samples, done)
        trainable = tune.with_resources(
            run_tune_trial, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        tuner = tune.Tuner(
            trainable,
            param_space={FIXED_KEY: fields},
            tune_config=tune.TuneConfig(
                search_alg=search,
                num_samples=samples,
                max_concurrent_trials=resources.max_concurrent,
            ),
            run_config=tune.RunConfig(
                name=f"{label.split()[0]}-{stamp}",
                storage_path=str(self.study_dir / "ray"),
                callbacks=[recorder, view],
                failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=1 if self.verbose else 0,
            ),
        )
        tuner.fit()
