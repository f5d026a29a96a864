"""Lambda cold starts and local deploys.

Cold start: a fresh execution environment (a new process: interpreter start, imports, handler
module initialisation) plus its first invocation with a representative event (events/), for every
function of template.yaml, against a bare handler importing only boto3 and powertools, measured the
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
EVENTS = {
    "ApiFunction": "events/api/list_versions.json",
    "IngestFunction": "events/s3/object-created.json",
    "PrepareTrainingFunction": "events/steps/prepare_training.json",
    "RegisterVersionFunction": "events/steps/register.json",
    "MarkFailedFunction": "events/steps/mark_failed.json",
    "AlertsFunction": "events/alerts/alarm_state_change.json",
}
# the budget each function's cold start must keep relative to the bare handler: the shared layer
# (pydantic, pynamodb) costs some; the ingest function is the one allowed pandas and pyarrow
TARGETS = {"IngestFunction": "<= 6.0"}
DEFAULT_TARGET = "<= 3.0"


def cold_start_ms(cloud: Any, function_name: str, event: bytes) -> float:
    from localcloud.patches import awslambda

    runtime = awslambda.runtime()
    samples = []
    for _ in range(ROUNDS):
        runtime.evict(function_name)
        started = time.perf_counter()
        cloud.client("lambda").invoke(FunctionName=function_name, Payload=event)
        samples.append((time.perf_counter() - started) * 1000)
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
