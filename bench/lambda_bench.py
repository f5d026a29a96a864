"""Lambda cold starts and local deploys.

Cold start: a fresh execution environment (a new process: interpreter start, imports, handler
module initialisation) plus its first invocation with a representative event (events/), answered
without an error (the registry is seeded with what the samples name), for every function of
template.yaml, against a bare handler importing only boto3 and powertools, measured the
same way in the same run. Deploy: the median wall time of a full local deploy of template.yaml
(package, SAM transform, provisioning of the five stacks through the emulator's APIs), against the
SAM transform of the same templates alone, the part no deployer can skip."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 5
DEPLOYS = 5
# IngestFunction's sample is an upload to another bucket, which it ignores: its figure is the imports
# (pyarrow included) and that short path; bench/ingest_bench.py measures the processing of an upload.
# The others answer their samples in full (see seed()); each round after the first finds its work
# done (a retry's path), as the cold start of a retried step would.
EVENTS = {
    "ApiFunction": "events/api/list_versions.json",
    "IngestFunction": "events/s3/object-created.json",
    "PrepareTrainingFunction": "events/steps/prepare_training.json",
    "RegisterVersionFunction": "events/steps/register.json",
    "MarkFailedFunction": "events/steps/mark_failed.json",
    "ExecutionEndedFunction": "events/steps/execution_aborted.json",
    "AlertsFunction": "events/alerts/alarm_state_change.json",
}
# the budget each function's cold start must keep relative to the bare handler: the shared layer
# (pydantic, pynamodb) costs some; the ingest function is the one allowed pandas and pyarrow
TARGETS = {"IngestFunction": "<= 6.0"}
DEFAULT_TARGET = "<= 3.0"


def seed(cloud: Any, stack: Any) -> None:
    """What the sample events name, so that each function answers its sample as in a running
    lifecycle, not with an error (ProjectNotFound is a different, shorter path): project wine, its
    dataset, versions 1 and 2 on main, the run the step samples name (a branch of version 2), the
    archive of the training job events/steps/register.json describes, and the published job code."""
    from bench.registry_bench import sample_dataset
    from cli import jobs_code
    from lepton.registry.commands import NewProject, NewRun, RegisterVersion
    from lepton.registry.dynamo import DynamoRegistryRepository
    from lepton.registry.models import RunOverrides
    from lepton.registry.service import Actor, RegistryService

    repo = DynamoRegistryRepository(stack.outputs["RegistryTableName"], host=cloud.endpoint_url, region=cloud.region)
    caller = json.loads((ROOT / EVENTS["ApiFunction"]).read_text())["requestContext"]["identity"]["userArn"]
    svc, actor = RegistryService(repo), Actor(caller)  # the API sample's caller: the project's admin
    svc.create_project(actor, NewProject(name="wine"))
    dataset = svc.register_dataset(actor, sample_dataset("wine"))
    for i in (1, 2):
        job = f"wine-train-000{i}"
        svc.register_version(actor, "wine", RegisterVersion(
            artifact_uri=f"s3://lepton-models/{job}/output/model.tar.gz", artifact_sha256="c" * 64,
            dataset_id=dataset.dataset_id, training_job=job, code_version="git-1a2b3c4",
            hyperparameters={"epochs": 10}, metrics={"validation:accuracy": 0.9}))  # fmt: skip
    register = json.loads((ROOT / EVENTS["RegisterVersionFunction"]).read_text())
    overrides = RunOverrides(hyperparameters={"epochs": 30})
    svc.create_run(actor, "wine", NewRun(base_version=2, overrides=overrides), run_id=register["run_id"])
    s3 = cloud.client("s3")
    artifact = register["training_job"]["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://")
    bucket, key = artifact.split("/", 1)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=b"model.tar.gz bytes" * 1000)
    jobs_code.publish(s3, stack.outputs["DataBucketName"])


def cold_start_ms(cloud: Any, function_name: str, event: bytes) -> float:
    from localcloud.patches import awslambda

    runtime = awslambda.runtime()
    samples = []
    for _ in range(ROUNDS):
        runtime.evict(function_name)
        started = time.perf_counter()
        response = cloud.client("lambda").invoke(FunctionName=function_name, Payload=event)
        samples.append((time.perf_counter() - started) * 1000)
        payload = response["Payload"].read()
        answer = json.loads(payload) if payload else None
        refused = isinstance(answer, dict) and int(answer.get("statusCode", 200)) >= 400  # the API's proxy answer
        if "FunctionError" in response or refused:  # an error path is not the cold start this measures
            raise RuntimeError(f"{function_name} failed on its sample: {payload[:500]!r}")
    return statistics.median(samples)


def run() -> list[dict[str, Any]]:
    from localcloud import LocalCloud
    from localcloud.deploy.render import render

    entries: list[dict[str, Any]] = []
    with LocalCloud() as cloud:
        deploys = []
        for i in range(DEPLOYS):
            started = time.perf_counter()
            cloud.deploy(ROOT / "template.yaml", f"lepton-bench{i}", {"Stage": f"bench{i}"})
            deploys.append(time.perf_counter() - started)
        transforms = []
        for _ in range(DEPLOYS):
            started = time.perf_counter()
            render(ROOT / "template.yaml")
            transforms.append(time.perf_counter() - started)
        deploy, transform = statistics.median(deploys), statistics.median(transforms)
        print(f"  full local deploy of template.yaml: median {deploy:.2f}s over {DEPLOYS} "
              f"(the SAM transform alone: {transform:.2f}s)")  # fmt: skip
        entries.append(_entry("local deploy of template.yaml (median s, vs transform alone)", deploy, transform,
                               "s", "<= 20.0"))  # fmt: skip

        bare_stack = cloud.deploy(ROOT / "bench" / "fixtures" / "bare" / "template.yaml", "bare")
        bare = cold_start_ms(cloud, bare_stack.resource("BareFunction").physical_id, b"{}")
        print(f"  bare handler (boto3 + powertools): {bare:.0f} ms")
        stack = cloud.stacks["lepton-bench0"]
        seed(cloud, stack)
        for logical, sample in EVENTS.items():
            name = next(r.physical_id for p, r in stack.all_resources() if p.endswith("/" + logical))
            event = (ROOT / sample).read_bytes() if (ROOT / sample).exists() else json.dumps({}).encode()
            ours = cold_start_ms(cloud, name, event)
            print(f"  {logical:<26} {ours:7.0f} ms  ratio {ours / bare:5.2f}")
            entries.append(_entry(f"cold start {logical} (ms, vs bare boto3+powertools handler)", ours, bare, "ms",
                                  TARGETS.get(logical, DEFAULT_TARGET)))  # fmt: skip
    return entries


def _entry(name: str, ours: float, baseline: float, unit: str, target: str) -> dict[str, Any]:
    return {"name": name, "ours": round(ours, 4), "baseline": round(baseline, 4), "unit": unit,
            "ratio": round(ours / baseline, 4), "target": target}  # fmt: skip


def main() -> list[dict[str, Any]]:
    return run()


if __name__ == "__main__":
    main()
