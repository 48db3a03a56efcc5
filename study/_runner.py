"""Runs a study: dense references and every method's searches in one Ray Tune run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study._board import REFERENCE_FAILED
from study._objectives import device_share, objective_vector
from study._plan import REFERENCE_METHOD, MethodPlan, optuna_study_name, plan_methods
from study._trainable import run_tune_trial
from study.store import collect_versions
from trials.errors import ParetuneError

if TYPE_CHECKING:
    from study._config import StudyConfig
    from study._driver import Driver
    from study._optuna_cache import DriverStorage
    from study._progress import ProgressDisplay
    from study._ray import LocalRay
    from study._router import Route
    from study.store import ResultStore, TrialRecord

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the study driver stopped before this trial finished"
OBJECTIVE_MODES = {"maximize": "max", "minimize": "min"}


class ReferenceFailed(ParetuneError):
    """A seed's dense reference failed, so its searched trials could not be scored."""


@dataclass(frozen=True)
class Reconciled:
    """What ``resume`` settled after a stopped driver.

    Attributes:
        interrupted: trials left RUNNING in the results store, now FAILED.
        told: Optuna trials left RUNNING whose result had reached the store, now told it.
        failed: Optuna trials left RUNNING without a stored result, now FAIL.
    """

    interrupted: int = 0
    told: int = 0
    failed: int = 0

    def describe(self) -> str:
        """One line for the console (empty when nothing needed settling)."""
        parts = []
        if self.interrupted:
            parts.append(f"marked {self.interrupted} interrupted trial(s) FAILED")
        if self.told or self.failed:
            parts.append(
                f"settled {self.told + self.failed} Optuna trial(s) left running "
                f"({self.told} with their stored result, {self.failed} as FAIL)"
            )
        return "; ".join(parts)


def is_final_failure(error: str | None) -> bool:
    """A FAILED trial that counts as done: it failed itself, not its driver or reference."""
    return error is not None and error != INTERRUPTED and REFERENCE_FAILED not in error


def optuna_storage(url: str) -> DriverStorage:
    """Optuna's RDB storage in the results database (same URL, its own tables), with
    retries, kept in memory for the trials this driver writes (:class:`DriverStorage`)."""
    from sqlalchemy import event

    from study._faults import RetryingRDBStorage
    from study._optuna_cache import DriverStorage
    from study.store._engine import sqlite_pragmas

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if not url.startswith("sqlite"):
        return DriverStorage(RetryingRDBStorage(url, engine_kwargs=engine_kwargs))
    engine_kwargs["connect_args"] = {"timeout": 60}
    storage = RetryingRDBStorage(url, engine_kwargs=engine_kwargs)
    # As the results store: WAL without an fsync per commit (Optuna commits several
    # times per trial); connections opened before the listener are dropped.
    event.listen(storage.engine, "connect", sqlite_pragmas)
    storage.engine.dispose()
    return DriverStorage(storage)


def fitting_slots(slots: int, cpus_per_trial: float) -> int:
    """At most ``slots``, and no more than the largest node of the Ray cluster holds (a
    reference asking for more CPUs than any node has would never start)."""
    import ray

    largest = max(
        (node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")),
        default=cpus_per_trial,
    )
    return max(1, min(slots, int(largest // cpus_per_trial) if cpus_per_trial else slots))


class StudyRunner:
    """Drives one study from its validated config; the store's only writer."""

    def __init__(
        self,
        config: StudyConfig,
        store: ResultStore,
        storage_url: str,
        *,
        verbose: bool = False,
        trainable: Callable[[dict[str, Any]], None] = run_tune_trial,
    ):
        """``trainable`` is the function Tune runs for each trial (the paretune trial;
        benchmarks of the driver give a trivial one that reports the same way)."""
        self.config = config
        self.trainable = trainable
        self.store = store
        self.verbose = verbose
        self.versions = collect_versions()
        self.study_dir = Path(str(config.study_dir)).resolve()
        self.storage_url = storage_url
        self._optuna_storage: DriverStorage | None = None
        self._reference_slots = 1

    # -- set-up ------------------------------------------------------------------------
    def create(self) -> None:
        """Records the study; fails if a study of that name exists."""
        self.store.create_study(
            self.config.name,
            self.config.public_dict(),
            [tuple(o) for o in self.config.objectives],
            versions=self.versions,
        )

    def reconcile(self) -> Reconciled:
        """After a stopped driver: its RUNNING trials become FAILED; Optuna trials it left
        RUNNING are told their stored result, or FAIL."""
        from study._search import settle_running_trials

        interrupted = self.store.mark_running_as_failed(self.config.name, INTERRUPTED)
        told = failed = 0
        for plan in plan_methods(self.config):
            name = optuna_study_name(self.config.name, plan.method, plan.seed)
            complete, fail = settle_running_trials(self._optuna(), name, self._stored_values(plan))
            told, failed = told + complete, failed + fail
        return Reconciled(interrupted, told, failed)

    def _stored_values(self, plan: MethodPlan) -> dict[int, list[float]]:
        """Objective values of the run's finished trials, by Optuna trial number: a driver
        stopped between storing a result and telling Optuna tells it on resume."""
        from dataclasses import asdict

        objectives = [name for name, _ in self.config.objectives_for(plan.method)]
        values = {}
        for trial in self.store.trials_of(self.config.name, method=plan.method, seed=plan.seed):
            if trial.status != "COMPLETE" or trial.optuna_trial_number is None:
                continue
            vector = objective_vector(objectives, asdict(trial), self._share)
            if vector is not None:
                values[trial.optuna_trial_number] = vector
        return values

    @property
    def _share(self) -> float:
        resources = self.config.resources
        return device_share(resources.cpus_per_trial, resources.gpus_per_trial)

    def _optuna(self) -> DriverStorage:
        if self._optuna_storage is None:
            self._optuna_storage = optuna_storage(self.storage_url)
        return self._optuna_storage

    # -- running -----------------------------------------------------------------------
    def run(
        self,
        progress: ProgressDisplay,
        driver: Driver | None = None,
        started: LocalRay | None = None,
    ) -> list[str]:
        """Runs whatever the study still lacks, every method and seed in one Tune run.

        The dense references are suggested first and train beside the searched trials,
        which read a reference's metrics from the board once it has finished (Delta_T).
        Methods that prune a grouped architecture of this study's own architecture search
        run in a second Tune run, once that search has finished. A local Ray started here
        stops in the background once the trials are done (the next ``start_ray`` and
        this process's exit wait for it), and by its reaper if this process dies; one the
        caller ``started`` is the caller's to stop.

        Returns:
            Why the study is not COMPLETE although its trials ran: results that did not
            reach Optuna (the study is then stored INCOMPLETE). Empty when COMPLETE.
        """
        from study._ray import start_ray, working_directory

        plans = plan_methods(self.config)
        self._check_grouping_sources(plans)
        self.store.set_study_status(self.config.name, "RUNNING")
        with working_directory(self.study_dir):
            local = start_ray(self.config.ray_address, verbose=self.verbose)
            session = local or started
            if session is not None and driver is not None:
                driver.uses_ray_session(session.session)
            self._reference_slots = fitting_slots(
                self.config.reference_slots(), self.config.resources.cpus_per_trial
            )
            try:
                failed_seeds = self._run_stages(plans, progress)
            finally:
                if local is not None:
                    local.stop_in_background()
        if failed_seeds:
            self.store.set_study_status(self.config.name, "FAILED")
            seeds = ", ".join(map(str, failed_seeds))
            raise ReferenceFailed(
                f"the dense reference trial failed for seed {seeds}; "
                f"see 'paretune status {self.config.name}'"
            )
        return self.settle_status()

    def settle_status(self) -> list[str]:
        """Stores the study COMPLETE, or INCOMPLETE when a stored outcome is not what
        Optuna's database holds (checked in the database itself, not in the trials this
        driver keeps in memory); returns the disagreements."""
        from study._audit import search_problems

        problems = search_problems(self.store, self._optuna().backend, self.config)
        self.store.set_study_status(self.config.name, "INCOMPLETE" if problems else "COMPLETE")
        return problems

    def _run_stages(self, plans: list[MethodPlan], progress: ProgressDisplay) -> list[int]:
        """The Tune runs of the study; returns the seeds whose reference failed."""
        from study._board import create_board

        name = self.config.name
        board, board_name = create_board()
        references = self._reference_plans()
        runs = {(REFERENCE_METHOD, seed): run_id for seed, run_id in references.items()}
        bars: dict[tuple[str, int], tuple[str, int, int]] = {}
        routes = []
        ready: set[int] = set()
        for seed in references:
            existing = self.store.reference_trial(name, seed)
            if existing is not None:
                self._check_reference_weights(seed)
                board.post.remote(seed, existing.metrics)
                ready.add(seed)
            else:
                routes.append(self._reference_route(seed))
                bars[(REFERENCE_METHOD, seed)] = (f"{REFERENCE_METHOD} (seed {seed})", 1, 0)
        board_name = board_name if references else ""
        for stage in (False, True):  # first the study's own model, then grouped ones
            for plan in plans:
                if (plan.grouping is not None) != stage:
                    continue
                run_id, route, done = self._method_route(plan, board_name)
                runs[(plan.method, plan.seed)] = run_id
                bars[(plan.method, plan.seed)] = (plan.label, plan.trials, done)
                if route.remaining > 0:
                    routes.append(route)
            if routes:
                ready |= self._tune(routes, runs, bars, board, progress, ready)
            routes, bars = [], {}
        return self._finish_runs(references, plans, runs)

    def _check_reference_weights(self, seed: int) -> None:
        """A finished reference that pruning trials start from must have left its weights."""
        if self.config.init != "dense":
            return
        path = Path(self.config.reference_checkpoint(seed))
        if not path.is_file():
            raise ReferenceFailed(
                f"the dense reference of seed {seed} finished but its weights are not at "
                f"{path} (init: dense needs them; is study_dir shared by every node?)"
            )

    def _check_grouping_sources(self, plans: list[MethodPlan]) -> None:
        """Fails early on a grouping source that cannot exist by the time it is needed."""
        from study._grouping import source_trial

        for plan in plans:
            source = plan.grouping
            if source is None or (source.study is None and source.trial == "best"):
                continue  # this study's own search: resolved once it has run
            source_trial(self.store, self.config.name, source, plan.seed)

    def _reference_plans(self) -> dict[int, int]:
        """Seed -> method run id of its dense reference (none when disabled)."""
        if not self.config.reference.enabled:
            return {}
        return {
            seed: self.store.start_method_run(self.config.name, REFERENCE_METHOD, seed)
            for seed in self.config.budget.seeds
        }

    def _reference_route(self, seed: int) -> Route:
        from study._router import Route

        fields = self.config.trial_config(REFERENCE_METHOD, {}, seed)
        slots = self._reference_slots
        if self.config.init == "dense":
            fields["threads"] = max(1, int(self.config.resources.cpus_per_trial * slots))
        share = self._share * slots
        return Route(REFERENCE_METHOD, seed, fields, remaining=1, device_share=share)

    def _finished(self, plan: MethodPlan) -> list[TrialRecord]:
        """The run's trials that count as done (an interrupted one is run again)."""
        trials = self.store.trials_of(self.config.name, method=plan.method, seed=plan.seed)
        return [
            t
            for t in trials
            if t.status in ("COMPLETE", "PRUNED")
            or (t.status == "FAILED" and is_final_failure(t.error))
        ]

    def _method_route(self, plan: MethodPlan, board: str) -> tuple[int, Route, int]:
        """The method run's id, its route (trials still to run) and its finished count."""
        from study._router import Route
        from study._samplers import build_sampler, sampler_seed
        from study._search import LevelPlan, StudySearch, stored_trial_count

        name = optuna_study_name(self.config.name, plan.method, plan.seed)
        run_id = self.store.start_method_run(
            self.config.name,
            plan.method,
            plan.seed,
            search_space=plan.space.to_dict(),
            optuna_study_name=name,
        )
        finished = self._finished(plan)
        done = len(finished)
        sampler = self.config.sampler
        objectives = self.config.objectives_for(plan.method)
        seed = sampler_seed(sampler.seed, plan.seed, stored_trial_count(self._optuna(), name))
        search = StudySearch(
            space=plan.space.to_optuna(),
            metric=[objective for objective, _ in objectives],
            mode=[OBJECTIVE_MODES[direction] for _, direction in objectives],
            sampler=build_sampler(sampler.name, seed, sampler.options),
            study_name=name,
            storage=self._optuna(),
            levels=LevelPlan.of(plan.levels, [t.params for t in finished]),
        )
        fields = self.config.trial_config(plan.method, {}, plan.seed)
        if plan.grouping is not None and plan.trials > done:
            from study._grouping import grouping_fields, source_trial

            source = source_trial(self.store, self.config.name, plan.grouping, plan.seed)
            fields["grouping"] = grouping_fields(source)
        existing = self.store.reference_trial(self.config.name, plan.seed)
        fields["reference"] = existing.metrics if existing is not None else None
        route = Route(
            plan.method,
            plan.seed,
            fields,
            plan.trials - done,
            search,
            board,
            objectives=tuple(objective for objective, _ in objectives),
            device_share=self._share,
            waits_for_reference=self.config.starts_from_reference(plan.method),
        )
        return run_id, route, done

    def _finish_runs(
        self, references: dict[int, int], plans: list[MethodPlan], runs: dict[Any, int]
    ) -> list[int]:
        """Closes every method run; returns the seeds whose reference failed."""
        failed = []
        for seed, run_id in references.items():
            ok = self.store.reference_trial(self.config.name, seed) is not None
            self.store.finish_method_run(run_id, "COMPLETE" if ok else "FAILED")
            if not ok:
                failed.append(seed)
        for plan in plans:
            complete = len(self._finished(plan)) >= plan.trials
            status = "COMPLETE" if complete else "FAILED"
            self.store.finish_method_run(runs[(plan.method, plan.seed)], status)
        return failed

    def _scheduler_for(self, method: str) -> Any:
        """The early-stopping scheduler of one method run (None: no early stopping)."""
        from study._scheduler import build_scheduler

        objectives = [(n, OBJECTIVE_MODES[d]) for n, d in self.config.objectives_for(method)]
        return build_scheduler(self.config.scheduler, objectives, self.config.budget.iterations)

    def _tune(
        self,
        routes: list[Route],
        runs: dict[tuple[str, int], int],
        bars: dict[tuple[str, int], tuple[str, int, int]],
        board: Any,
        progress: ProgressDisplay,
        ready: set[int],
    ) -> set[int]:
        """One Tune run of ``routes``; returns the seeds whose reference is ready after it."""
        from ray import tune

        from study._progress import ProgressView
        from study._recorder import StoreRecorder
        from study._router import RoutedScheduler, StudyRouter
        from study._tune_config import TrialResources, planned_iterations

        resources = self.config.resources
        objectives = self.config.objectives
        scheduler = RoutedScheduler(self._scheduler_for)
        router = StudyRouter(
            routes,
            metric=[objective for objective, _ in objectives],
            mode=[OBJECTIVE_MODES[direction] for _, direction in objectives],
            stopped=scheduler.stopped_rung,
            ready_seeds=ready,
        )
        recorder = StoreRecorder(
            self.store,
            runs,
            router=router,
            versions=self.versions,
            board=board,
            scheduler=scheduler,
        )
        iterations = {(r.method, r.seed): planned_iterations(r.fields) for r in routes}
        view = ProgressView(progress, bars, iterations, trial_ids=recorder.writer.trial_ids)
        trainable = tune.with_resources(
            self.trainable,
            TrialResources(
                resources.cpus_per_trial, resources.gpus_per_trial, self._reference_slots
            ),
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        tuner = tune.Tuner(
            trainable,
            param_space={},
            tune_config=tune.TuneConfig(
                search_alg=router,
                scheduler=scheduler,
                num_samples=sum(route.remaining for route in routes),
                max_concurrent_trials=resources.max_concurrent,
                reuse_actors=True,  # a worker that has imported torch runs the next trial
            ),
            run_config=tune.RunConfig(
                name=f"{self.config.name}-{stamp}",
                storage_path=str(self.study_dir / "ray"),
                callbacks=[recorder, view],
                failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=1 if self.verbose else 0,
            ),
        )
        try:
            tuner.fit()
            recorder.flush()  # every result stored before the runs are closed
        finally:
            recorder.close()
        return router.ready_seeds
