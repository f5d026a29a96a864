"""localcloud's SageMaker: moto's SageMaker, made to run training, processing and tuning jobs.

    from localcloud import sagemaker as local_sagemaker
    local_sagemaker.install()            # idempotent; patches moto 5.2.5 in this process
    ...                                  # boto3 / Step Functions calls, under mock_aws() or the moto server
    local_sagemaker.wait_for_jobs(60)    # tests: block until every job has ended
    local_sagemaker.shutdown()           # stop running jobs and kill their processes

Configuration (keyword arguments of install(), else environment variables):
    work_dir             LOCALCLOUD_SAGEMAKER_DIR                 per-job sandboxes (default: a temp dir)
    max_concurrent_jobs  LOCALCLOUD_SAGEMAKER_MAX_JOBS            job processes at once (default: CPU count)
    keep_sandboxes       LOCALCLOUD_SAGEMAKER_KEEP_SANDBOXES      keep each job's /opt/ml tree (default: no)
    stop_grace_seconds   LOCALCLOUD_SAGEMAKER_STOP_GRACE_SECONDS  SIGTERM to SIGKILL on stop (default: 5)
    python               LOCALCLOUD_SAGEMAKER_PYTHON              interpreter standing in for the DLC's
"""

from __future__ import annotations

import threading
from pathlib import Path

from . import patches
from .images import ImageNotRunnableError, LocalRuntime, resolve
from .processing import ProcessingJobs
from .runner import JobRunner, RunnerConfig
from .training import TrainingJobs
from .tuning import TuningJobs

__all__ = [
    "ImageNotRunnableError",
    "LocalRuntime",
    "install",
    "installed",
    "resolve",
    "shutdown",
    "wait_for_jobs",
]


class _State:
    lock = threading.Lock()
    runner: JobRunner | None = None


def install(
    *,
    work_dir: str | Path | None = None,
    max_concurrent_jobs: int | None = None,
    keep_sandboxes: bool | None = None,
    stop_grace_seconds: float | None = None,
) -> None:
    """Patch moto so that its SageMaker runs jobs. Idempotent: a second call with no arguments keeps the
    running configuration; with arguments (and no job running) it applies the new one."""
    with _State.lock:
        wants_change = any(v is not None for v in (work_dir, max_concurrent_jobs, keep_sandboxes, stop_grace_seconds))
        current = _State.runner
        if current is not None and not wants_change:
            return
        config = RunnerConfig.from_environment(work_dir, max_concurrent_jobs, keep_sandboxes, stop_grace_seconds)
        if current is not None:
            if current.config == config:
                return
            current.shutdown()
        runner = JobRunner(config)
        training = TrainingJobs(runner)
        patches.apply(patches.Services(training, ProcessingJobs(runner), TuningJobs(runner, training)))
        _State.runner = runner


def installed() -> bool:
    return _State.runner is not None


def wait_for_jobs(timeout: float = 60.0) -> None:
    """Block until every job (training, processing, tuning) has ended; TimeoutError names those still running."""
    if _State.runner is not None:
        _State.runner.wait_for_jobs(timeout)


def shutdown(timeout: float = 10.0) -> None:
    """Stop every running job (their processes get SIGTERM, then SIGKILL) and wait for their threads."""
    if _State.runner is not None:
        _State.runner.shutdown(timeout)
