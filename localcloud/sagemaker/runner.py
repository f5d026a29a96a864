"""Background job threads, bounded concurrency, sandboxes and the job subprocess.

Each job runs in its own thread so that the Create* call returns at once, as on AWS. A semaphore
bounds how many jobs hold a process at the same time (a job waiting for a slot is still "Starting").
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOG = logging.getLogger("localcloud.sagemaker")

MAX_LOG_EVENT_CHARS = 256 * 1024


@dataclass(frozen=True)
class RunnerConfig:
    work_dir: Path
    max_concurrent_jobs: int
    keep_sandboxes: bool
    stop_grace_seconds: float

    @classmethod
    def from_environment(
        cls,
        work_dir: str | Path | None = None,
        max_concurrent_jobs: int | None = None,
        keep_sandboxes: bool | None = None,
        stop_grace_seconds: float | None = None,
    ) -> RunnerConfig:
        env = os.environ
        default_dir = Path(tempfile.gettempdir()) / f"localcloud-sagemaker-{os.getpid()}"
        return cls(
            work_dir=Path(work_dir or env.get("LOCALCLOUD_SAGEMAKER_DIR") or default_dir),
            max_concurrent_jobs=max(
                1, max_concurrent_jobs or int(env.get("LOCALCLOUD_SAGEMAKER_MAX_JOBS") or os.cpu_count() or 1)
            ),
            keep_sandboxes=(
                keep_sandboxes
                if keep_sandboxes is not None
                else env.get("LOCALCLOUD_SAGEMAKER_KEEP_SANDBOXES", "0") not in ("", "0", "false")
            ),
            stop_grace_seconds=(
                stop_grace_seconds
                if stop_grace_seconds is not None
                else float(env.get("LOCALCLOUD_SAGEMAKER_STOP_GRACE_SECONDS") or 5.0)
            ),
        )


@dataclass
class ProcessOutcome:
    exit_code: int
    stop_reason: str | None
    tail: list[str]


@dataclass(eq=False)
class JobHandle:
    """The running side of one job: its thread, its process and the request to stop it."""

    kind: str
    account_id: str
    region: str
    name: str
    stop_grace_seconds: float
    done: threading.Event = field(default_factory=threading.Event)
    stop_reason: str | None = None
    _process: subprocess.Popen[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop_requested: threading.Event = field(default_factory=threading.Event)
    _deadline: threading.Timer | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.account_id, self.region, self.name)

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def request_stop(self, reason: str = "Stopped") -> bool:
        """Ask the job to stop; the first reason wins. False when the job has already finished."""
        with self._lock:
            if self.done.is_set():
                return False
            if self.stop_reason is None:
                self.stop_reason = reason
            self._stop_requested.set()
            process = self._process
        if process is not None:
            _signal_group(process, signal.SIGTERM)
            killer = threading.Timer(self.stop_grace_seconds, _signal_group, (process, signal.SIGKILL))
            killer.daemon = True
            killer.start()
        return True

    def start_deadline(self, max_runtime_seconds: float | None, reason: str = "MaxRuntimeExceeded") -> None:
        if not max_runtime_seconds:
            return
        timer = threading.Timer(float(max_runtime_seconds), self.request_stop, (reason,))
        timer.daemon = True
        self._deadline = timer
        timer.start()

    def wait_stop(self, timeout: float) -> bool:
        return self._stop_requested.wait(timeout)

    def _attach(self, process: subprocess.Popen[str] | None) -> bool:
        with self._lock:
            self._process = process
            return not self._stop_requested.is_set()

    def _finish(self) -> None:
        with self._lock:
            self.done.set()
            self._process = None
        if self._deadline is not None:
            self._deadline.cancel()


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


class JobRunner:
    def __init__(self, config: RunnerConfig) -> None:
        self.config = config
        self._slots = threading.BoundedSemaphore(config.max_concurrent_jobs)
        self._jobs: dict[tuple[str, str, str, str], JobHandle] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- jobs -----------------------------------------------------------------------------------
    def start(self, kind: str, account_id: str, region: str, name: str, body: Callable[[JobHandle], None]) -> JobHandle:
        handle = JobHandle(kind, account_id, region, name, self.config.stop_grace_seconds)

        def run() -> None:
            try:
                body(handle)
            except Exception:  # the body records failures itself; this is a bug in localcloud
                LOG.exception("localcloud SageMaker %s job %s crashed", kind, name)
            finally:
                handle._finish()

        thread = threading.Thread(target=run, name=f"sagemaker-{kind}-{name}", daemon=True)
        with self._lock:
            self._jobs[handle.key] = handle
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return handle

    def get(self, kind: str, account_id: str, region: str, name: str) -> JobHandle | None:
        with self._lock:
            return self._jobs.get((kind, account_id, region, name))

    @contextlib.contextmanager
    def slot(self, handle: JobHandle) -> Iterator[bool]:
        """Hold one of the concurrent-job slots; yields False if the job was stopped while waiting."""
        while not self._slots.acquire(timeout=0.05):
            if handle.stop_requested:
                yield False
                return
        try:
            yield not handle.stop_requested
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def sandbox(self, handle: JobHandle) -> Iterator[Path]:
        path = self.config.work_dir / handle.kind / f"{handle.name}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True, exist_ok=False)
        try:
            yield path
        finally:
            if not self.config.keep_sandboxes:
                shutil.rmtree(path, ignore_errors=True)

    def run_process(
        self,
        handle: JobHandle,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        on_line: Callable[[str], None],
    ) -> ProcessOutcome:
        """Run the job's process to its end, streaming each output line (stdout and stderr) to on_line."""
        tail: deque[str] = deque(maxlen=40)
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
            )
        except OSError as exc:
            message = f"could not start {argv[0]!r}: {exc}"
            on_line(message)
            return ProcessOutcome(exit_code=127, stop_reason=None, tail=[message])
        if not handle._attach(process):
            # The stop arrived before the process existed: request_stop had nothing to signal.
            _signal_group(process, signal.SIGKILL)
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")[:MAX_LOG_EVENT_CHARS]
            tail.append(line)
            on_line(line)
        exit_code = process.wait()
        handle._attach(None)
        stop_reason = handle.stop_reason if handle.stop_requested else None
        return ProcessOutcome(exit_code=exit_code, stop_reason=stop_reason, tail=list(tail))

    # -- whole runner ---------------------------------------------------------------------------
    def wait_for_jobs(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = [h for h in self._jobs.values() if not h.done.is_set()]
            if not running:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = ", ".join(f"{h.kind} {h.name}" for h in running)
                raise TimeoutError(f"localcloud SageMaker jobs still running after {timeout}s: {names}")
            running[0].done.wait(min(remaining, 0.5))

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            handles = list(self._jobs.values())
            threads = list(self._threads)
        for handle in handles:
            handle.request_stop("Stopped")
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._jobs = {k: h for k, h in self._jobs.items() if not h.done.is_set()}
            self._threads = [t for t in self._threads if t.is_alive()]
