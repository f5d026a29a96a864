"""The lifecycle state machine as a person drives it: a project created through the API, a CSV
uploaded to incoming/<project>/ (the real ingest starts the execution), or an execution started by
hand for a dataset; then the execution's history and the registry's records, read back."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
# Few epochs: these tests are about the wiring, not the model.
QUICK_TRAINING: dict[str, Any] = {"epochs": 5, "patience": 5, "hidden_sizes": "16", "seed": 1}


@contextmanager
def single_threaded_jobs() -> Iterator[None]:
    """The local SageMaker's job processes inherit OMP_NUM_THREADS: one intra-op thread suits these
    small models on two shared cores (two threads each spin against each other)."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


@dataclass
class Execution:
    arn: str
    description: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def states(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]

    def task_failures(self) -> list[dict[str, Any]]:
        return [e["taskFailedEventDetails"] for e in self.history if e["type"] == "TaskFailed"]

    def task_outputs(self) -> list[dict[str, Any]]:
        succeeded = [e["taskSucceededEventDetails"] for e in self.history if e["type"] == "TaskSucceeded"]
        return [json.loads(details["output"]) for details in succeeded]

    def state_output(self, state: str) -> Any:
        """What a state passed on (its StateExited output), parsed."""
        for event in self.history:
            details = event.get("stateExitedEventDetails")
            if details and details["name"] == state:
                return json.loads(details["output"])
        raise KeyError(f"{state} never exited: {self.states}")

    @property
    def run_id(self) -> str:
        return str(self.state_output("PrepareTraining")["prepared"]["run"]["run_id"])

    def mark_failed_output(self) -> dict[str, Any]:
        (payload,) = [o["Payload"] for o in self.task_outputs() if "run_status" in o.get("Payload", {})]
        return dict(payload)


class Lifecycle:
    """A deployed Lepton (tests/support/lepton_stack.py) seen through its API, bucket and state machine."""

    def __init__(self, lepton: Any) -> None:
        self.lepton = lepton
        self.cloud = lepton.cloud
        self.api = lepton.api("alice")

    # -- the registry through the API --------------------------------------------------------------
    def create_project(self, name: str, training: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "description": "lifecycle test"}
        if training is not None:
            body["training"] = training
        return dict(self.api.post("/projects", body))

    def set_training(self, project: str, training: dict[str, Any]) -> None:
        self.api.patch(f"/projects/{project}", {"training": training})

    def run(self, project: str, run_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/projects/{project}/runs/{run_id}"))

    def version(self, project: str, number: int) -> dict[str, Any]:
        return dict(self.api.get(f"/projects/{project}/versions/{number}"))

    def versions(self, project: str) -> list[dict[str, Any]]:
        return list(self.api.get(f"/projects/{project}/versions")["items"])

    # -- data --------------------------------------------------------------------------------------
    def upload(self, project: str, csv: str) -> str:
        """Upload data/<csv> to incoming/<project>/; the ingest function accepts it and starts the
        lifecycle. Returns the dataset id."""
        s3 = self.cloud.client("s3")
        s3.put_object(Bucket=self.lepton.bucket, Key=f"incoming/{project}/{csv}", Body=(DATA / csv).read_bytes())
        self.cloud.wait_idle()
        datasets = self.api.get(f"/projects/{project}/datasets")["items"]
        assert datasets, f"the upload of {csv} to {project} was not accepted"
        return str(datasets[0]["dataset_id"])

    def curated_keys(self, project: str, dataset_id: str, split: str) -> list[str]:
        s3 = self.cloud.client("s3")
        prefix = f"curated/{project}/{dataset_id}/{split}/"
        return [o["Key"] for o in s3.list_objects_v2(Bucket=self.lepton.bucket, Prefix=prefix).get("Contents", [])]

    def remove_split(self, project: str, dataset_id: str, split: str) -> None:
        s3 = self.cloud.client("s3")
        for key in self.curated_keys(project, dataset_id, split):
            s3.delete_object(Bucket=self.lepton.bucket, Key=key)

    # -- executions --------------------------------------------------------------------------------
    def ingest_execution(self, project: str, dataset_id: str) -> str:
        """The ARN of the execution the ingest function started (named <project>-<dataset_id>)."""
        return self.lepton.state_machine.replace(":stateMachine:", ":execution:") + f":{project}-{dataset_id}"

    def start(self, name: str, project: str, dataset_id: str | None = None, **extra: Any) -> str:
        payload: dict[str, Any] = {"project": project, **extra}
        if dataset_id is not None:
            payload["dataset_id"] = dataset_id
        return str(self.lepton.start(name, payload))

    def finish(self, arn: str, timeout: float = 300) -> Execution:
        description = self.cloud.wait_execution(arn, timeout=timeout)
        return Execution(arn, description, self.lepton.history(arn))

    @contextmanager
    def throttled(self, logical_id: str) -> Iterator[str]:
        """A function of the stack at reserved concurrency 0: every invocation is throttled, as Lambda
        does, and Step Functions sees Lambda.TooManyRequestsException."""
        lam = self.cloud.client("lambda")
        function = self.lepton.function(logical_id)
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
        try:
            yield function
        finally:
            lam.delete_function_concurrency(FunctionName=function)
