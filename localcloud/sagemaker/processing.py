"""CreateProcessingJob that runs the job: inputs downloaded, the container's entrypoint run, outputs uploaded."""

from __future__ import annotations

import copy
import json
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
from moto.sagemaker.models import FakeProcessingJob

from . import images
from .common import STATE_LOCK, clip, now, read_text, script_failure_reason, stop_in_progress
from .contract import CURRENT_HOST, OPT_ML, ContractError, OptMl, base_environment
from .runner import LOG, JobHandle, JobRunner
from .storage import LogStreamWriter, S3Store, S3Uri, StorageError

LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
PROCESSING_ROOT = OPT_ML + "/processing/"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


def validate_request(backend: Any, request: Mapping[str, Any]) -> None:
    name = str(request.get("ProcessingJobName"))
    if name in backend.processing_jobs:
        arn = FakeProcessingJob.arn_formatter(name, backend.account_id, backend.region_name)
        raise ResourceInUseException(
            f"Processing job names must be unique within an AWS account and region, and a processing job with "
            f"this name already exists ({arn})"
        )
    if not (request.get("AppSpecification") or {}).get("ImageUri"):
        raise ValidationError("AppSpecification.ImageUri is required")
    seen: set[str] = set()
    for index, item in enumerate(request.get("ProcessingInputs") or []):
        where = f"ProcessingInputs.{index + 1}"
        if item.get("InputName") in seen:
            raise ValidationError(f"{where}.InputName '{item.get('InputName')}' is used twice; names must be unique")
        seen.add(item.get("InputName"))
        s3 = item.get("S3Input")
        if s3 is None:
            if item.get("DatasetDefinition"):
                raise ValidationError(f"{where}.DatasetDefinition is not supported by localcloud; use S3Input")
            continue
        _check_local_path(s3.get("LocalPath"), f"{where}.S3Input.LocalPath")
        _check_uri(s3.get("S3Uri"), f"{where}.S3Input.S3Uri")
    for index, item in enumerate((request.get("ProcessingOutputConfig") or {}).get("Outputs") or []):
        where = f"ProcessingOutputConfig.Outputs.{index + 1}"
        s3 = item.get("S3Output")
        if s3 is None:
            continue
        _check_local_path(s3.get("LocalPath"), f"{where}.S3Output.LocalPath")
        _check_uri(s3.get("S3Uri"), f"{where}.S3Output.S3Uri")


def _check_local_path(path: Any, field: str) -> None:
    if not isinstance(path, str) or not path.startswith(PROCESSING_ROOT) or ".." in path.split("/"):
        raise ValidationError(f"{field} must be an absolute path under {PROCESSING_ROOT}, got '{path}'")


def _check_uri(uri: Any, field: str) -> None:
    try:
        S3Uri.parse(str(uri or ""), field)
    except StorageError as exc:
        raise ValidationError(str(exc)) from exc


class ProcessingJobs:
    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def create(self, backend: Any, request: Mapping[str, Any]) -> Any:
        validate_request(backend, request)
        job: Any = FakeProcessingJob(
            app_specification=copy.deepcopy(dict(request["AppSpecification"])),
            experiment_config=request.get("ExperimentConfig"),  # type: ignore[arg-type]
            network_config=request.get("NetworkConfig"),  # type: ignore[arg-type]
            processing_inputs=copy.deepcopy(list(request.get("ProcessingInputs") or [])),
            processing_job_name=request["ProcessingJobName"],
            processing_output_config=copy.deepcopy(request.get("ProcessingOutputConfig")),  # type: ignore[arg-type]
            account_id=backend.account_id,
            region_name=backend.region_name,
            role_arn=request.get("RoleArn", ""),
            tags=list(request.get("Tags") or []),
            stopping_condition=dict(request.get("StoppingCondition") or {}) or None,  # type: ignore[arg-type]
        )
        job.processing_job_status = "InProgress"
        job.processing_end_time = None
        job.processing_start_time = None
        job.processing_resources = copy.deepcopy(request.get("ProcessingResources"))
        job.environment = dict(request.get("Environment") or {}) or None
        job.exit_message = None
        job.failure_reason = None
        with STATE_LOCK:
            backend.processing_jobs[job.processing_job_name] = job
        self.runner.start(
            "processing",
            backend.account_id,
            backend.region_name,
            job.processing_job_name,
            lambda handle: _ProcessingRun(self.runner, job, handle).run(),
        )
        return job

    def stop(self, backend: Any, name: str) -> None:
        job = backend.processing_jobs.get(name)
        if job is None:
            arn = FakeProcessingJob.arn_formatter(name, backend.account_id, backend.region_name)
            raise ValidationError(f"Could not find processing job '{arn}'.")

        def mark_stopping() -> None:
            job.processing_job_status = "Stopping"
            job.last_modified_time = now()

        stop_in_progress(self.runner, "processing", backend, name, lambda: job.processing_job_status, mark_stopping)


class _ProcessingRun:
    def __init__(self, runner: JobRunner, job: Any, handle: JobHandle) -> None:
        self.runner = runner
        self.job = job
        self.handle = handle
        self.store = S3Store(handle.account_id, handle.region)

    def run(self) -> None:
        try:
            with self.runner.slot(self.handle) as acquired:
                if not acquired:
                    self._finish("Stopped")
                    return
                self._run_in_slot()
        except Exception as exc:  # noqa: BLE001 - the job thread's boundary: any bug fails the job, never hangs it
            LOG.exception("processing job %s failed inside localcloud", self.job.processing_job_name)
            if self.job.processing_job_status not in TERMINAL:
                self._finish("Failed", f"InternalServerError: localcloud could not run the job: {exc!r}")

    def _run_in_slot(self) -> None:
        job, handle = self.job, self.handle
        handle.start_deadline((job.stopping_condition or {}).get("MaxRuntimeInSeconds"))
        with STATE_LOCK:
            job.processing_start_time = now()
            job.last_modified_time = job.processing_start_time
        with self.runner.sandbox(handle) as sandbox:
            layout = OptMl.create(sandbox)
            try:
                command, env = self._prepare(layout)
            except (images.ImageNotRunnableError, ContractError) as exc:
                self._finish("Failed", str(exc))
                return
            except StorageError as exc:
                self._finish("Failed", f"ClientError: Failed to download data. {exc}")
                return
            if handle.stop_requested:
                self._finish("Stopped")
                return
            log = LogStreamWriter(
                handle.account_id, handle.region, LOG_GROUP, f"{job.processing_job_name}/algo-1-{int(time.time())}"
            )
            outcome = self.runner.run_process(handle, command, cwd=layout.root, env=env, on_line=self._sink(log))
            log.flush()
            message = read_text(layout.message_file)
            if message and message.strip():
                with STATE_LOCK:
                    job.exit_message = clip(message.strip())
            if outcome.stop_reason == "MaxRuntimeExceeded":
                limit = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
                self._finish(
                    "Failed",
                    "MaxRuntimeExceeded: the processing job ran longer than "
                    f"StoppingCondition.MaxRuntimeInSeconds ({limit} s)",
                )
            elif outcome.stop_reason:
                self._finish("Stopped")
            elif outcome.exit_code == 0:
                try:
                    self._upload_outputs(layout)
                except StorageError as exc:
                    self._finish("Failed", f"ClientError: Failed to upload the outputs. {exc}")
                    return
                self._finish("Completed")
            else:
                command_line = shlex.join(command)
                reason = script_failure_reason("AlgorithmError", message, outcome.exit_code, outcome.tail, command_line)
                self._finish("Failed", reason)

    def _prepare(self, layout: OptMl) -> tuple[list[str], dict[str, str]]:
        job, handle = self.job, self.handle
        app = job.app_specification
        try:
            runtime = images.resolve(app["ImageUri"], "processing")
        except images.ImageNotRunnableError as exc:
            raise images.ImageNotRunnableError(f"ClientError: {exc}") from exc
        entrypoint = list(app.get("ContainerEntrypoint") or [])
        if not entrypoint:
            raise ContractError(
                "ClientError: AppSpecification.ContainerEntrypoint is required to run a processing job locally "
                "(the image's own entrypoint is not known here), "
                'e.g. ["python3", "/opt/ml/processing/input/code/evaluate.py"]'
            )
        for item in job.processing_inputs or []:
            s3 = item.get("S3Input")
            if s3 is None:
                continue
            if s3.get("S3InputMode", "File") == "Pipe":
                raise ContractError(
                    f"ClientError: input '{item.get('InputName')}' uses S3InputMode Pipe, "
                    "which localcloud does not support"
                )
            destination = Path(layout.relocate(s3["LocalPath"]))
            destination.mkdir(parents=True, exist_ok=True)
            uri = S3Uri.parse(s3["S3Uri"], f"input '{item.get('InputName')}' S3Uri")
            if s3.get("S3DataType", "S3Prefix") == "ManifestFile":
                self.store.download_manifest(uri, destination)
            else:
                self.store.download_prefix(uri, destination)
        for item in (job.processing_output_config or {}).get("Outputs") or []:
            if item.get("S3Output"):
                Path(layout.relocate(item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        config = layout.root / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": CURRENT_HOST, "hosts": [CURRENT_HOST]}))
        (config / "processingjobconfig.json").write_text(json.dumps(self._job_config(), default=str))
        words = [*entrypoint, *(app.get("ContainerArguments") or [])]
        command = [runtime.python if images.is_python_command(w) else layout.relocate_word(w) for w in words]
        env = base_environment(handle.region)
        env["SAGEMAKER_BASE_DIR"] = str(layout.root)  # where /opt/ml is here, for scripts that need it
        env.update(job.environment or {})
        return command, env

    def _job_config(self) -> dict[str, Any]:
        job = self.job
        return {
            "ProcessingJobArn": job.arn,
            "ProcessingJobName": job.processing_job_name,
            "AppSpecification": job.app_specification,
            "ProcessingInputs": job.processing_inputs,
            "ProcessingOutputConfig": job.processing_output_config,
            "ProcessingResources": job.processing_resources,
            "Environment": job.environment,
            "RoleArn": job.role_arn,
            "StoppingCondition": job.stopping_condition,
        }

    def _sink(self, log: LogStreamWriter) -> Any:
        def sink(line: str) -> None:
            if line:
                log.write(line)

        return sink

    def _upload_outputs(self, layout: OptMl) -> None:
        for item in (self.job.processing_output_config or {}).get("Outputs") or []:
            s3 = item.get("S3Output")
            if not s3:
                continue
            source = Path(layout.relocate(s3["LocalPath"]))
            self.store.upload_directory(source, S3Uri.parse(s3["S3Uri"], f"output '{item.get('OutputName')}' S3Uri"))

    def _finish(self, status: str, failure_reason: str | None = None) -> None:
        job = self.job
        with STATE_LOCK:
            stamp = now()
            if failure_reason is not None:
                job.failure_reason = clip(failure_reason)
            job.processing_end_time = stamp
            job.last_modified_time = stamp
            job.processing_job_status = status
