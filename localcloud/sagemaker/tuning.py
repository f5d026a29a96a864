"""CreateHyperParameterTuningJob that runs its trials as training jobs, searched with optuna.

Strategy -> optuna: Random -> RandomSampler, Bayesian -> GPSampler (a Gaussian process), Grid ->
GridSampler, Hyperband -> RandomSampler with a HyperbandPruner fed by the objective metric as the job
logs it. TrainingJobEarlyStoppingType Auto -> MedianPruner (SageMaker's median stopping rule).
Bayesian trials run in synchronous batches of MaxParallelTrainingJobs, told in trial order, so the same
RandomSeed proposes the same hyperparameters whatever order the jobs finish in.
"""

from __future__ import annotations

import contextlib
import copy
import math
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import HyperParameterTuningJob

from .common import STATE_LOCK, clip, now, stop_in_progress
from .metrics import MetricSample, compile_definitions
from .runner import LOG, JobHandle, JobRunner
from .training import TrainingJobs
from .training import validate_request as validate_training_request

if TYPE_CHECKING:
    import optuna

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
MAX_RANGES = 30


# -- the request, validated ---------------------------------------------------------------------
@dataclass(frozen=True)
class NumericRange:
    name: str
    kind: str  # "Integer" | "Continuous"
    low: float
    high: float
    scaling: str


@dataclass(frozen=True)
class CategoricalRange:
    name: str
    values: tuple[str, ...]


ParameterRange = NumericRange | CategoricalRange


@dataclass(frozen=True)
class TuningSpec:
    strategy: str
    objective_type: str
    objective_metric: str
    max_jobs: int
    max_parallel: int
    ranges: tuple[ParameterRange, ...]
    static_hyperparameters: Mapping[str, str]
    early_stopping: str
    seed: int | None
    min_resource: int | None
    max_resource: int | None
    target_value: float | None

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> TuningSpec:
        """Validate a CreateHyperParameterTuningJob request; ValidationError names the offending field."""
        config = request.get("HyperParameterTuningJobConfig") or {}
        if request.get("TrainingJobDefinitions"):
            raise ValidationError(
                "TrainingJobDefinitions (several algorithms in one tuning job) is not supported by localcloud; "
                "use TrainingJobDefinition"
            )
        if request.get("WarmStartConfig"):
            raise ValidationError("WarmStartConfig is not supported by localcloud")
        definition = request.get("TrainingJobDefinition")
        if not definition:
            raise ValidationError("TrainingJobDefinition is required")
        strategy = config.get("Strategy")
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"HyperParameterTuningJobConfig.Strategy must be one of {', '.join(STRATEGIES)}, got '{strategy}'"
            )
        objective = config.get("HyperParameterTuningJobObjective") or definition.get("TuningObjective") or {}
        objective_type, metric = objective.get("Type"), objective.get("MetricName")
        if objective_type not in ("Minimize", "Maximize"):
            raise ValidationError(
                "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.Type must be Minimize or Maximize, "
                f"got '{objective_type}'"
            )
        algorithm = definition.get("AlgorithmSpecification") or {}
        try:
            metric_names = [name for name, _ in compile_definitions(algorithm.get("MetricDefinitions"))]
        except ValueError as exc:
            raise ValidationError(f"TrainingJobDefinition.{exc}") from exc
        if metric not in metric_names:
            raise ValidationError(
                f"The objective metric '{metric}' (HyperParameterTuningJobObjective.MetricName) is not defined in "
                f"TrainingJobDefinition.AlgorithmSpecification.MetricDefinitions ({', '.join(metric_names) or 'none'})"
            )
        raw_ranges = config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {}
        ranges = _parse_ranges(raw_ranges)
        if not ranges:
            raise ValidationError("HyperParameterTuningJobConfig.ParameterRanges must define at least one range")
        if len(ranges) > MAX_RANGES:
            raise ValidationError(f"At most {MAX_RANGES} hyperparameter ranges can be tuned, got {len(ranges)}")
        static = dict(definition.get("StaticHyperParameters") or {})
        overlap = sorted({r.name for r in ranges} & set(static))
        if overlap:
            raise ValidationError(
                f"The hyperparameters {', '.join(overlap)} are both tuned (ParameterRanges) and static "
                "(StaticHyperParameters); a hyperparameter can be only one of them"
            )
        limits = config.get("ResourceLimits") or {}
        early_stopping = config.get("TrainingJobEarlyStoppingType") or "Off"
        if early_stopping not in ("Off", "Auto"):
            raise ValidationError(f"TrainingJobEarlyStoppingType must be Off or Auto, got '{early_stopping}'")
        if strategy == "Grid":
            numeric = [r.name for r in ranges if isinstance(r, NumericRange)]
            if numeric:
                raise ValidationError(
                    f"The Grid strategy supports only categorical parameter ranges; {', '.join(numeric)} are numeric"
                )
            grid_size = math.prod(len(r.values) for r in ranges if isinstance(r, CategoricalRange))
            max_jobs = min(grid_size, int(limits.get("MaxNumberOfTrainingJobs") or grid_size))
        else:
            max_jobs = int(limits.get("MaxNumberOfTrainingJobs") or 0)
            if max_jobs < 1:
                raise ValidationError(
                    "HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs must be at least 1 for the "
                    f"{strategy} strategy"
                )
        max_parallel = int(limits.get("MaxParallelTrainingJobs") or 0)
        if max_parallel < 1:
            raise ValidationError(
                "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs must be at least 1"
            )
        hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
        if strategy == "Hyperband" and early_stopping != "Off":
            raise ValidationError(
                "TrainingJobEarlyStoppingType must be Off with the Hyperband strategy (it stops trials early itself)"
            )
        seed = config.get("RandomSeed")
        target = (config.get("TuningJobCompletionCriteria") or {}).get("TargetObjectiveMetricValue")
        return cls(
            strategy=strategy,
            objective_type=objective_type,
            objective_metric=metric,
            max_jobs=max_jobs,
            max_parallel=max_parallel,
            ranges=tuple(ranges),
            static_hyperparameters=static,
            early_stopping=early_stopping,
            seed=int(seed) if seed is not None else None,
            min_resource=int(hyperband["MinResource"]) if hyperband.get("MinResource") else None,
            max_resource=int(hyperband["MaxResource"]) if hyperband.get("MaxResource") else None,
            target_value=float(target) if target is not None else None,
        )

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.objective_type == "Minimize" else "maximize"

    def better(self, a: float, b: float) -> bool:
        return a < b if self.objective_type == "Minimize" else a > b


def _number(value: Any, field: str, integer: bool) -> float:
    try:
        number = float(int(value)) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ValidationError(f"{field} must be {kind}, got '{value}'") from None
    if not math.isfinite(number):
        raise ValidationError(f"{field} must be finite, got '{value}'")
    return number


def _parse_ranges(raw: Mapping[str, Any]) -> list[ParameterRange]:
    ranges: list[ParameterRange] = []
    seen: set[str] = set()

    def check_name(name: Any, where: str) -> str:
        if not name or not isinstance(name, str):
            raise ValidationError(f"{where}.Name is required")
        if name in seen:
            raise ValidationError(f"The hyperparameter '{name}' has more than one range ({where})")
        seen.add(name)
        return name

    for kind in ("Integer", "Continuous"):
        for index, item in enumerate(raw.get(f"{kind}ParameterRanges") or []):
            where = f"ParameterRanges.{kind}ParameterRanges.{index + 1}"
            name = check_name(item.get("Name"), where)
            low = _number(item.get("MinValue"), f"{where}.MinValue", kind == "Integer")
            high = _number(item.get("MaxValue"), f"{where}.MaxValue", kind == "Integer")
            scaling = item.get("ScalingType") or "Auto"
            if scaling not in SCALING_TYPES:
                raise ValidationError(f"{where}.ScalingType must be one of {', '.join(SCALING_TYPES)}, got '{scaling}'")
            if low > high:
                raise ValidationError(f"{where}: MinValue {low:g} is greater than MaxValue {high:g} for '{name}'")
            if scaling == "Logarithmic" and low <= 0:
                raise ValidationError(f"{where}: Logarithmic scaling of '{name}' needs MinValue > 0, got {low:g}")
            if scaling == "ReverseLogarithmic":
                if kind == "Integer":
                    raise ValidationError(f"{where}: ReverseLogarithmic scaling applies only to continuous ranges")
                if not (low >= 0 and high < 1):
                    raise ValidationError(
                        f"{where}: ReverseLogarithmic scaling of '{name}' needs 0 <= MinValue <= MaxValue < 1"
                    )
            ranges.append(NumericRange(name=name, kind=kind, low=low, high=high, scaling=scaling))
    for index, item in enumerate(raw.get("CategoricalParameterRanges") or []):
        where = f"ParameterRanges.CategoricalParameterRanges.{index + 1}"
        name = check_name(item.get("Name"), where)
        values = tuple(str(v) for v in item.get("Values") or [])
        if not values:
            raise ValidationError(f"{where}.Values must list at least one value for '{name}'")
        if len(set(values)) != len(values):
            raise ValidationError(f"{where}.Values for '{name}' has duplicates")
        ranges.append(CategoricalRange(name=name, values=values))
    return ranges


# -- search space -------------------------------------------------------------------------------
def distributions(spec: TuningSpec) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, Any] = {}
    for r in spec.ranges:
        if isinstance(r, CategoricalRange):
            space[r.name] = CategoricalDistribution(list(r.values))
        elif r.kind == "Integer":
            space[r.name] = IntDistribution(int(r.low), int(r.high), log=r.scaling == "Logarithmic")
        elif r.scaling == "ReverseLogarithmic":
            # 1 - x is log-uniform: dense near the upper end, as SageMaker scales it.
            space[r.name] = FloatDistribution(1.0 - r.high, 1.0 - r.low, log=True)
        else:
            space[r.name] = FloatDistribution(r.low, r.high, log=r.scaling == "Logarithmic")
    return space


def format_hyperparameters(spec: TuningSpec, params: Mapping[str, Any]) -> dict[str, str]:
    """A trial's tuned values as the strings a training job receives."""
    tuned: dict[str, str] = {}
    for r in spec.ranges:
        value = params[r.name]
        if isinstance(r, CategoricalRange):
            tuned[r.name] = str(value)
        elif r.kind == "Integer":
            tuned[r.name] = str(int(value))
        elif r.scaling == "ReverseLogarithmic":
            tuned[r.name] = repr(min(r.high, max(r.low, 1.0 - float(value))))
        else:
            tuned[r.name] = repr(float(value))
    return tuned


def _grid_sampler(grid: Mapping[str, Sequence[Any]], seed: int) -> Any:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """optuna's GridSampler, minus the study.stop() it calls once the grid is done: that call works only
        inside study.optimize(), and the tuning job asks and tells itself (it runs exactly the grid's size)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridSampler(grid, seed=seed)


def build_study(spec: TuningSpec, study_name: str) -> optuna.Study:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    sampler: optuna.samplers.BaseSampler
    pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    if spec.strategy == "Bayesian":
        startup = max(2, min(10, spec.max_jobs // 3))
        sampler = optuna.samplers.GPSampler(
            seed=seed,
            n_startup_trials=startup,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
    elif spec.strategy == "Grid":
        grid = {r.name: list(r.values) for r in spec.ranges if isinstance(r, CategoricalRange)}
        sampler = _grid_sampler(grid, seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    if spec.strategy == "Hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=spec.min_resource or 1, max_resource=spec.max_resource or "auto"
        )
    elif spec.early_stopping == "Auto":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, spec.max_jobs // 3)))
    return optuna.create_study(study_name=study_name, direction=spec.direction, sampler=sampler, pruner=pruner)


# -- running ------------------------------------------------------------------------------------
@dataclass(eq=False)
class _Trial:
    index: int
    name: str
    tuned: dict[str, str]
    optuna_trial: Any
    job: Any = None
    early_stopped: bool = False
    last_objective: float | None = None
    objective_status: str = "Pending"
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self, tuning_name: str, spec: TuningSpec) -> dict[str, Any]:
        job = self.job
        summary: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": job.arn,
            "TuningJobName": tuning_name,
            "CreationTime": job.creation_time,
            "TrainingJobStatus": job.training_job_status,
            "TunedHyperParameters": dict(self.tuned),
            "ObjectiveStatus": self.objective_status,
        }
        if job.training_start_time is not None:
            summary["TrainingStartTime"] = job.training_start_time
        if job.training_end_time is not None:
            summary["TrainingEndTime"] = job.training_end_time
        if job.failure_reason:
            summary["FailureReason"] = job.failure_reason
        if self.objective_value() is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": spec.objective_type,
                "MetricName": spec.objective_metric,
                "Value": self.objective_value(),
            }
        return summary

    def objective_value(self) -> float | None:
        if self.objective_status != "Succeeded":
            return None
        return self.last_objective


@dataclass(eq=False)
class _TuningState:
    spec: TuningSpec
    job: Any
    trials: list[_Trial] = field(default_factory=list)


class TuningJobs:
    def __init__(self, runner: JobRunner, training: TrainingJobs) -> None:
        self.runner = runner
        self.training = training
        self._states: dict[tuple[str, str, str], _TuningState] = {}

    def create(self, backend: Any, request: Mapping[str, Any]) -> Any:
        spec = TuningSpec.from_request(request)
        name = request["HyperParameterTuningJobName"]
        definition = request["TrainingJobDefinition"]
        probe = {**definition, "TrainingJobName": f"{name}-000-00000000", "HyperParameters": {}}
        try:
            validate_training_request(backend, probe)
        except ValidationError as exc:
            raise ValidationError(f"TrainingJobDefinition: {exc.message}") from exc
        job: Any = HyperParameterTuningJob(
            hyper_parameter_tuning_job_name=name,
            hyper_parameter_tuning_job_config=copy.deepcopy(dict(request["HyperParameterTuningJobConfig"])),
            region_name=backend.region_name,
            account_id=backend.account_id,
            training_job_definition=copy.deepcopy(request.get("TrainingJobDefinition")),
            training_job_definitions=None,
            warm_start_config=None,
            tags=list(request.get("Tags") or []),
            autotune=request.get("Autotune"),
        )
        # Undo moto's instant, fake completion.
        job.hyper_parameter_tuning_job_status = "InProgress"
        job.hyper_parameter_tuning_end_time = None
        job.training_job_status_counters = _training_counters([])
        job.objective_status_counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        job.best_training_job = None
        job.OverallBestTrainingJob = None
        job.failure_reason = None
        job.tuning_job_completion_details = None
        job.consumed_resources = None
        state = _TuningState(spec=spec, job=job)
        with STATE_LOCK:
            self._states[(backend.account_id, backend.region_name, name)] = state
            backend.hyper_parameter_tuning_jobs[name] = job
        self.runner.start(
            "tuning",
            backend.account_id,
            backend.region_name,
            name,
            lambda handle: _TuningRun(self, backend, state, handle).run(),
        )
        return job

    def _state(self, backend: Any, name: str) -> _TuningState:
        state = self._states.get((backend.account_id, backend.region_name, name))
        if state is None or backend.hyper_parameter_tuning_jobs.get(name) is not state.job:
            raise ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name}")
        return state

    def stop(self, backend: Any, name: str) -> None:
        job = self._state(backend, name).job

        def mark_stopping() -> None:
            job.hyper_parameter_tuning_job_status = "Stopping"
            job.last_modified_time = now()

        status = lambda: job.hyper_parameter_tuning_job_status  # noqa: E731
        stop_in_progress(self.runner, "tuning", backend, name, status, mark_stopping)

    def list_training_jobs(self, backend: Any, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        state = self._state(backend, name)
        with STATE_LOCK:
            summaries = [t.summary(name, state.spec) for t in state.trials if t.job is not None]
        status = params.get("StatusEquals")
        if status:
            summaries = [s for s in summaries if s["TrainingJobStatus"] == status]
        sort_by = params.get("SortBy") or "CreationTime"
        descending = (params.get("SortOrder") or "Descending") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":
            with_value = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            without = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" not in s]
            with_value.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=descending)
            summaries = with_value + without
        else:
            key = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(sort_by, "CreationTime")
            summaries.sort(key=lambda s: (s[key], s["TrainingJobName"]), reverse=descending)
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or 100)
        page = summaries[start : start + size]
        result: dict[str, Any] = {"TrainingJobSummaries": page}
        if start + size < len(summaries):
            result["NextToken"] = str(start + size)
        return result


def _training_counters(trials: Sequence[_Trial]) -> dict[str, int]:
    counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    for trial in trials:
        status = trial.job.training_job_status if trial.job is not None else "InProgress"
        if status == "Failed":
            counters["NonRetryableError"] += 1
        elif status in ("Completed", "Stopped"):
            counters[status] += 1
        else:
            counters["InProgress"] += 1
    return counters


class _DefinitionRejectedError(Exception):
    pass


class _TuningRun:
    def __init__(self, owner: TuningJobs, backend: Any, state: _TuningState, handle: JobHandle) -> None:
        self.owner = owner
        self.backend = backend
        self.state = state
        self.spec = state.spec
        self.job = state.job
        self.handle = handle
        self.started = time.monotonic()
        self.target_reached = False

    def run(self) -> None:
        try:
            self._run()
        except _DefinitionRejectedError as exc:
            self._stop_running_trials()
            self._finish("Failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - the job thread's boundary: any bug fails the job, never hangs it
            LOG.exception("tuning job %s failed inside localcloud", self.job.hyper_parameter_tuning_job_name)
            self._stop_running_trials()
            self._finish("Failed", f"InternalServerError: localcloud could not run the tuning job: {exc!r}")

    def _run(self) -> None:
        spec = self.spec
        study = build_study(spec, self.job.hyper_parameter_tuning_job_name)
        space = distributions(spec)
        batch_mode = spec.strategy == "Bayesian"
        running: list[_Trial] = []
        launched = 0
        while True:
            if self.handle.stop_requested:
                self._stop_running_trials()
                self._wait_for(running)
                for trial in running:
                    self._tell(study, trial)
                self._finish("Stopped")
                return
            can_launch = launched < spec.max_jobs and not self.target_reached
            if can_launch and (not batch_mode or not running):
                while len(running) < spec.max_parallel and launched < spec.max_jobs:
                    running.append(self._launch(study, space, launched + 1))
                    launched += 1
            if not running:
                break
            finished = self._wait_any(running, all_of=batch_mode)
            for trial in sorted(finished, key=lambda t: t.index):
                running.remove(trial)
                self._tell(study, trial)
        self._conclude()

    def _launch(self, study: Any, space: Mapping[str, Any], index: int) -> _Trial:
        optuna_trial = study.ask(dict(space))
        tuned = format_hyperparameters(self.spec, optuna_trial.params)
        name = f"{self.job.hyper_parameter_tuning_job_name}-{index:03d}-{secrets.token_hex(4)}"
        trial = _Trial(index=index, name=name, tuned=tuned, optuna_trial=optuna_trial)
        definition = self.job.training_job_definition
        request = {
            "TrainingJobName": name,
            "HyperParameters": {**self.spec.static_hyperparameters, **tuned},
            "AlgorithmSpecification": copy.deepcopy(definition["AlgorithmSpecification"]),
            "RoleArn": definition.get("RoleArn", ""),
            "InputDataConfig": copy.deepcopy(definition.get("InputDataConfig") or []),
            "OutputDataConfig": copy.deepcopy(definition.get("OutputDataConfig") or {}),
            "ResourceConfig": copy.deepcopy(definition.get("ResourceConfig") or {}),
            "StoppingCondition": copy.deepcopy(definition.get("StoppingCondition") or {}),
            "VpcConfig": definition.get("VpcConfig"),
            "EnableNetworkIsolation": definition.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": definition.get("EnableInterContainerTrafficEncryption", False),
            "EnableManagedSpotTraining": definition.get("EnableManagedSpotTraining", False),
            "CheckpointConfig": definition.get("CheckpointConfig"),
            "Environment": definition.get("Environment"),
            "RetryStrategy": definition.get("RetryStrategy"),
        }
        with STATE_LOCK:
            self.state.trials.append(trial)
        try:
            trial.job = self.owner.training.create(
                self.backend, request, tuning_job_arn=self.job.arn, on_metric=lambda s: self._on_metric(trial, s)
            )
        except Exception as exc:  # the definition was validated at creation: this is unexpected
            with STATE_LOCK:
                self.state.trials.remove(trial)
            raise _DefinitionRejectedError(f"ClientError: the training job {name} was rejected: {exc}") from exc
        self._refresh()
        return trial

    def _on_metric(self, trial: _Trial, sample: MetricSample) -> None:
        if sample.name != self.spec.objective_metric:
            return
        with trial.lock:
            trial.last_objective = sample.value
            if trial.finished or trial.early_stopped:
                return
            trial.optuna_trial.report(sample.value, sample.step)
            prune = trial.optuna_trial.should_prune()
        if prune and trial.job is not None:
            handle = self.owner.runner.get("training", self.handle.account_id, self.handle.region, trial.name)
            if handle is not None and handle.request_stop("Stopped"):
                trial.early_stopped = True

    def _wait_any(self, running: list[_Trial], all_of: bool) -> list[_Trial]:
        while True:
            done = [t for t in running if t.job.training_job_status in ("Completed", "Failed", "Stopped")]
            if (all_of and len(done) == len(running)) or (not all_of and done):
                return done
            if self.handle.wait_stop(0.05):
                return []

    def _wait_for(self, trials: Sequence[_Trial]) -> None:
        for trial in trials:
            handle = self.owner.runner.get("training", self.handle.account_id, self.handle.region, trial.name)
            if handle is not None:
                handle.done.wait(60)

    def _tell(self, study: Any, trial: _Trial) -> None:
        import optuna

        job = trial.job
        status = job.training_job_status
        final = {m["MetricName"]: m["Value"] for m in job.final_metric_data_list or []}
        value = final.get(self.spec.objective_metric)
        with trial.lock:
            trial.finished = True
            if status == "Completed" and value is not None:
                trial.last_objective = value
                trial.objective_status = "Succeeded"
                study.tell(trial.optuna_trial, value)
            elif status == "Stopped" and trial.early_stopped and trial.last_objective is not None:
                trial.objective_status = "Succeeded"
                study.tell(trial.optuna_trial, state=optuna.trial.TrialState.PRUNED)
            else:
                trial.objective_status = "Failed"
                study.tell(trial.optuna_trial, state=optuna.trial.TrialState.FAIL)
        best = self._best()
        if self.spec.target_value is not None and best is not None:
            value = best.objective_value()
            if value is not None and not self.spec.better(self.spec.target_value, value):
                self.target_reached = True
        self._refresh()

    def _best(self) -> _Trial | None:
        best: _Trial | None = None
        for trial in self.state.trials:
            value = trial.objective_value()
            if value is None or trial.job.training_job_status != "Completed":
                continue
            best_value = best.objective_value() if best is not None else None
            if best is None or best_value is None or self.spec.better(value, best_value):
                best = trial
        return best

    def _refresh(self) -> None:
        with STATE_LOCK:
            trials = list(self.state.trials)
            self.job.training_job_status_counters = _training_counters(trials)
            objective = {"Succeeded": 0, "Pending": 0, "Failed": 0}
            for trial in trials:
                objective[trial.objective_status] += 1
            self.job.objective_status_counters = objective
            best = self._best()
            name = self.job.hyper_parameter_tuning_job_name
            self.job.best_training_job = best.summary(name, self.spec) if best is not None else None
            self.job.last_modified_time = now()

    def _stop_running_trials(self) -> None:
        for trial in list(self.state.trials):
            handle = self.owner.runner.get("training", self.handle.account_id, self.handle.region, trial.name)
            if handle is not None and trial.job is not None and trial.job.training_job_status == "InProgress":
                with contextlib.suppress(ValidationError):  # it finished meanwhile
                    self.owner.training.stop(self.backend, trial.name)

    def _conclude(self) -> None:
        self._refresh()
        if self._best() is not None:
            self._finish("Completed")
            return
        reasons = [t.job.failure_reason for t in self.state.trials if t.job is not None and t.job.failure_reason]
        detail = f" The first failure: {reasons[0]}" if reasons else ""
        self._finish(
            "Failed",
            f"No training job reported the objective metric '{self.spec.objective_metric}': "
            f"{len(self.state.trials)} training jobs ran and none completed with it.{detail}",
        )

    def _finish(self, status: str, failure_reason: str | None = None) -> None:
        self._refresh()
        with STATE_LOCK:
            stamp = now()
            if failure_reason is not None:
                self.job.failure_reason = clip(failure_reason)
            self.job.hyper_parameter_tuning_end_time = stamp
            self.job.consumed_resources = {"RuntimeInSeconds": max(1, round(time.monotonic() - self.started))}
            self.job.hyper_parameter_tuning_job_status = status
            self.job.last_modified_time = stamp
