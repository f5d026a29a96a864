"""CreateTrainingJob that runs the job: script mode under the training container contract."""

from __future__ import annotations

import copy
import json
import shlex
import time
from collections.abc import Callable, Mapping
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
from moto.sagemaker.models import FakeTrainingJob

from . import images
from .common import STATE_LOCK, clip, now, read_text, script_failure_reason, stop_in_progress
from .contract import ContractError, OptMl, TrainingContainer, base_environment, decode_hyperparameters, script_mode
from .metrics import MetricDefinitionError, MetricParser, MetricSample, compile_definitions
from .runner import LOG, JobHandle, JobRunner
from .storage import LogStreamWriter, S3Store, S3Uri, StorageError, extract_tar_gz, tar_gz_directory

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})

MetricCallback = Callable[[MetricSample], None]


def _status_message(status: str) -> str:
    return {
        "Starting": "Preparing the instances for training",
        "Downloading": "Downloading input data",
        "Training": "Training image download completed. Training in progress.",
        "Uploading": "Uploading generated training model",
        "Completed": "Training job completed",
        "Failed": "Training job failed",
        "Stopping": "Stopping the training job",
        "Stopped": "Training job stopped",
        "MaxRuntimeExceeded": "Training job exceeded StoppingCondition.MaxRuntimeInSeconds",
    }.get(status, status)


def transition(job: Any, secondary: str, primary: str | None = None) -> None:
    """Move the job to a new secondary status (and primary status), closing the previous transition."""
    with STATE_LOCK:
        stamp = now()
        transitions = [dict(t) for t in job.secondary_status_transitions or []]
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = stamp
        entry: dict[str, Any] = {"Status": secondary, "StartTime": stamp, "StatusMessage": _status_message(secondary)}
        if secondary in ("Completed", "Failed", "Stopped", "MaxRuntimeExceeded"):
            entry["EndTime"] = stamp
        transitions.append(entry)
        job.secondary_status_transitions = transitions
        job.secondary_status = secondary
        if primary is not None:
            job.training_job_status = primary
        job.last_modified_time = stamp


def validate_request(backend: Any, request: Mapping[str, Any]) -> None:
    name = str(request.get("TrainingJobName"))
    if name in backend.training_jobs:
        arn = FakeTrainingJob.arn_formatter(name, backend.account_id, backend.region_name)
        raise ResourceInUseException(
            f"Training job names must be unique within an AWS account and region, and a training job with this "
            f"name already exists ({arn})"
        )
    algorithm = request.get("AlgorithmSpecification") or {}
    if not algorithm.get("TrainingImage") and not algorithm.get("AlgorithmName"):
        raise ValidationError("AlgorithmSpecification.TrainingImage (or AlgorithmName) is required")
    try:
        compile_definitions(algorithm.get("MetricDefinitions"))
    except MetricDefinitionError as exc:
        raise ValidationError(str(exc)) from exc
    if not (request.get("OutputDataConfig") or {}).get("S3OutputPath"):
        raise ValidationError("OutputDataConfig.S3OutputPath is required")
    try:
        S3Uri.parse(request["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig.S3OutputPath")
    except StorageError as exc:
        raise ValidationError(str(exc)) from exc
    names = [c.get("ChannelName") for c in request.get("InputDataConfig") or []]
    if len(names) != len(set(names)):
        raise ValidationError("InputDataConfig has duplicate ChannelName values; channel names must be unique")


class TrainingJobs:
    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def create(
        self,
        backend: Any,
        request: Mapping[str, Any],
        *,
        tuning_job_arn: str | None = None,
        on_metric: MetricCallback | None = None,
    ) -> Any:
        validate_request(backend, request)
        algorithm = copy.deepcopy(dict(request.get("AlgorithmSpecification") or {}))
        job: Any = FakeTrainingJob(
            account_id=backend.account_id,
            region_name=backend.region_name,
            training_job_name=request["TrainingJobName"],
            hyper_parameters=dict(request.get("HyperParameters") or {}),
            # moto overwrites MetricDefinitions with a fake one: give it a copy
            algorithm_specification=copy.deepcopy(algorithm),
            role_arn=request.get("RoleArn", ""),
            input_data_config=copy.deepcopy(list(request.get("InputDataConfig") or [])),
            output_data_config=dict(request["OutputDataConfig"]),
            resource_config=dict(request.get("ResourceConfig") or {}),
            vpc_config=request.get("VpcConfig"),  # type: ignore[arg-type]
            stopping_condition=dict(request.get("StoppingCondition") or {}),
            tags=list(request.get("Tags") or []),
            enable_network_isolation=bool(request.get("EnableNetworkIsolation", False)),
            enable_inter_container_traffic_encryption=bool(request.get("EnableInterContainerTrafficEncryption", False)),
            enable_managed_spot_training=bool(request.get("EnableManagedSpotTraining", False)),
            checkpoint_config=request.get("CheckpointConfig"),  # type: ignore[arg-type]
            debug_hook_config=request.get("DebugHookConfig"),  # type: ignore[arg-type]
            debug_rule_configurations=request.get("DebugRuleConfigurations"),  # type: ignore[arg-type]
            tensor_board_output_config=request.get("TensorBoardOutputConfig"),  # type: ignore[arg-type]
            experiment_config=request.get("ExperimentConfig"),  # type: ignore[arg-type]
        )
        # Undo moto's instant completion; every attribute exists before the job is visible, since
        # describe iterates over them while the job thread updates their values.
        stamp = now()
        job.algorithm_specification = algorithm
        job.training_job_status = "InProgress"
        job.secondary_status = "Starting"
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": stamp, "StatusMessage": _status_message("Starting")}
        ]
        job.creation_time = job.last_modified_time = stamp
        job.model_artifacts = None
        job.final_metric_data_list = None
        job.training_start_time = None
        job.training_end_time = None
        job.failure_reason = None
        job.training_time_in_seconds = None
        job.billable_time_in_seconds = None
        job.environment = dict(request.get("Environment") or {}) or None
        job.retry_strategy = request.get("RetryStrategy")
        job.tuning_job_arn = tuning_job_arn
        with STATE_LOCK:
            backend.training_jobs[job.training_job_name] = job
        self.runner.start(
            "training",
            backend.account_id,
            backend.region_name,
            job.training_job_name,
            lambda handle: _TrainingRun(self.runner, job, handle, on_metric).run(),
        )
        return job

    def stop(self, backend: Any, name: str) -> None:
        job = backend.training_jobs.get(name)
        if job is None:
            arn = FakeTrainingJob.arn_formatter(name, backend.account_id, backend.region_name)
            raise ValidationError(f"Could not find training job '{arn}'.")
        stop_in_progress(
            self.runner, "training", backend, name, lambda: job.training_job_status,
            lambda: transition(job, "Stopping", "Stopping"),
        )  # fmt: skip


class _TrainingRun:
    """One execution of a training job, from Starting to a terminal status."""

    def __init__(self, runner: JobRunner, job: Any, handle: JobHandle, on_metric: MetricCallback | None) -> None:
        self.runner = runner
        self.job = job
        self.handle = handle
        self.on_metric = on_metric
        self.store = S3Store(handle.account_id, handle.region)
        self.parser = MetricParser(job.algorithm_specification.get("MetricDefinitions"))
        self.started = time.monotonic()

    def run(self) -> None:
        try:
            with self.runner.slot(self.handle) as acquired:
                if not acquired:
                    self._finish("Stopped", self.handle.stop_reason or "Stopped")
                    return
                self._run_in_slot()
        except Exception as exc:  # noqa: BLE001 - the job thread's boundary: any bug fails the job, never hangs it
            LOG.exception("training job %s failed inside localcloud", self.job.training_job_name)
            if self.job.training_job_status not in TERMINAL:
                self._finish("Failed", "Failed", f"InternalServerError: localcloud could not run the job: {exc!r}")

    def _run_in_slot(self) -> None:
        job, handle = self.job, self.handle
        handle.start_deadline((job.stopping_condition or {}).get("MaxRuntimeInSeconds"))
        with STATE_LOCK:
            job.training_start_time = now()
            self.started = time.monotonic()
            transition(job, "Downloading")
        with self.runner.sandbox(handle) as sandbox:
            layout = OptMl.create(sandbox)
            try:
                command, env = self._prepare(layout)
            except (images.ImageNotRunnableError, ContractError, StorageError) as exc:
                reason = str(exc)
                if isinstance(exc, StorageError):
                    reason = (
                        f"ClientError: Data download failed: {exc}. Please ensure that the bucket exists in the "
                        f"region ({handle.region}) and that objects exist under the given S3 URI."
                    )
                self._finish("Failed", "Failed", reason)
                return
            if handle.stop_requested:
                self._finish_stopped(layout)
                return
            transition(job, "Training")
            log = LogStreamWriter(
                handle.account_id, handle.region, LOG_GROUP, f"{job.training_job_name}/algo-1-{int(time.time())}"
            )
            log.write(f"Invoking script with the following command:\n{shlex.join(command)}")
            outcome = self.runner.run_process(handle, command, cwd=layout.code, env=env, on_line=self._line_sink(log))
            log.flush()
            with STATE_LOCK:
                job.final_metric_data_list = self.parser.final_metric_data_list() or None
            if outcome.stop_reason:
                self._finish_stopped(layout)
            elif outcome.exit_code == 0:
                transition(job, "Uploading")
                try:
                    self._upload_model(layout)
                    self._upload_output(layout)
                except StorageError as exc:
                    self._finish("Failed", "Failed", f"ClientError: Uploading the model artifacts failed: {exc}")
                    return
                self._finish("Completed", "Completed")
            else:
                written = read_text(layout.failure_file)
                command_line = shlex.join(command)
                reason = script_failure_reason("AlgorithmError", written, outcome.exit_code, outcome.tail, command_line)
                try:
                    self._upload_output(layout)
                except StorageError:
                    LOG.warning("could not upload the output data of failed job %s", job.training_job_name)
                self._finish("Failed", "Failed", reason)

    def _prepare(self, layout: OptMl) -> tuple[list[str], dict[str, str]]:
        job, handle = self.job, self.handle
        algorithm = job.algorithm_specification
        if not algorithm.get("TrainingImage"):
            raise images.ImageNotRunnableError(
                f"ClientError: the algorithm '{algorithm.get('AlgorithmName')}' is not runnable locally: "
                "localcloud runs training images of the AWS PyTorch deep learning containers in script mode"
            )
        try:
            runtime = images.resolve(algorithm["TrainingImage"], "training")
        except images.ImageNotRunnableError as exc:
            raise images.ImageNotRunnableError(f"ClientError: {exc}") from exc
        for channel in job.input_data_config:
            self._download_channel(channel, layout)
        if algorithm.get("ContainerEntrypoint"):
            # A bring-your-own entrypoint: run it as given, with /opt/ml relocated and Python mapped.
            words = [*algorithm["ContainerEntrypoint"], *(algorithm.get("ContainerArguments") or [])]
            command = [runtime.python if images.is_python_command(w) else layout.relocate_word(w) for w in words]
            env = base_environment(handle.region)
            env.update({"TRAINING_JOB_NAME": job.training_job_name, "TRAINING_JOB_ARN": job.arn})
            env.update(job.environment or {})
            (layout.input_config / "hyperparameters.json").write_text(json.dumps(job.hyper_parameters))
            return command, env
        hyperparameters = decode_hyperparameters(job.hyper_parameters)
        script = script_mode(hyperparameters)
        self._download_source(script.submit_directory, layout)
        if not (layout.code / script.program).is_file():
            raise ContractError(
                f"ClientError: the entry point '{script.program}' (hyperparameter sagemaker_program) is not in "
                f"{script.submit_directory}"
            )
        container = TrainingContainer(
            layout=layout,
            job_name=job.training_job_name,
            job_arn=job.arn,
            region=handle.region,
            raw_hyperparameters=job.hyper_parameters,
            script=script,
            channels=job.input_data_config,
            resource_config=job.resource_config,
            environment=job.environment or {},
            python=runtime.python,
        )
        container.write_config_files()
        return container.command(), container.env()

    def _download_source(self, uri: str, layout: OptMl) -> None:
        if uri.startswith("file://"):
            raise ContractError(
                "ClientError: sagemaker_submit_directory must be an s3:// URI for a training job; upload the "
                "sourcedir.tar.gz to S3"
            )
        data = self.store.get_bytes(S3Uri.parse(uri, "the hyperparameter sagemaker_submit_directory"))
        extract_tar_gz(data, layout.code, f"The source archive {uri} (sagemaker_submit_directory)")

    def _download_channel(self, channel: Mapping[str, Any], layout: OptMl) -> None:
        name = channel.get("ChannelName", "")
        if channel.get("InputMode", "File") == "Pipe":
            raise ContractError(
                f"ClientError: channel '{name}' uses InputMode Pipe, which localcloud does not support; use File"
            )
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise ContractError(f"ClientError: channel '{name}' has no DataSource.S3DataSource (localcloud reads S3)")
        uri = S3Uri.parse(source.get("S3Uri", ""), f"InputDataConfig channel '{name}' S3Uri")
        destination = layout.channel(name)
        destination.mkdir(parents=True, exist_ok=True)
        if source.get("S3DataType", "S3Prefix") == "ManifestFile":
            self.store.download_manifest(uri, destination)
        else:
            self.store.download_prefix(uri, destination)

    def _line_sink(self, log: LogStreamWriter) -> Callable[[str], None]:
        def sink(line: str) -> None:
            if line:
                log.write(line)
            for sample in self.parser.feed(line, now()):
                if self.on_metric is not None:
                    try:
                        self.on_metric(sample)
                    except Exception:  # noqa: BLE001 - a tuning bug must not kill the job's log stream
                        LOG.exception("metric callback of %s failed", self.job.training_job_name)

        return sink

    def _output_uri(self) -> S3Uri:
        base = S3Uri.parse(self.job.output_data_config["S3OutputPath"], "OutputDataConfig.S3OutputPath")
        return base.child(self.job.training_job_name, "output")

    def _upload_model(self, layout: OptMl) -> None:
        uri = self._output_uri().child("model.tar.gz")
        self.store.put_bytes(uri, tar_gz_directory(layout.model))
        with STATE_LOCK:
            self.job.model_artifacts = {"S3ModelArtifacts": str(uri)}

    def _upload_output(self, layout: OptMl) -> None:
        if any(p.is_file() for p in layout.output_data.rglob("*")):
            self.store.put_bytes(self._output_uri().child("output.tar.gz"), tar_gz_directory(layout.output_data))

    def _finish_stopped(self, layout: OptMl) -> None:
        # As on AWS, what the job saved before it was stopped is kept.
        reason = self.handle.stop_reason or "Stopped"
        transition(self.job, "Uploading")
        try:
            self._upload_model(layout)
            self._upload_output(layout)
        except StorageError:
            LOG.warning("could not upload the artifacts of stopped job %s", self.job.training_job_name)
        self._finish("Stopped", reason)

    def _finish(self, primary: str, secondary: str, failure_reason: str | None = None) -> None:
        job = self.job
        with STATE_LOCK:
            stamp = now()
            if failure_reason is not None:
                job.failure_reason = clip(failure_reason)
            if job.training_start_time is not None:
                job.training_end_time = stamp
                seconds = max(1, round(time.monotonic() - self.started))
                job.training_time_in_seconds = seconds
                job.billable_time_in_seconds = seconds
            transition(job, secondary, primary)
