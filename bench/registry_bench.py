"""The registry workload on this registry (DynamoDB Local) and on MLflow's registry (SQLite,
in-process), in the same run: per-operation medians, ratios ours/MLflow (target <= 1.0), and the
DynamoDB calls each operation makes against the round-trip budget.

    python bench/registry_bench.py [--versions 200] [--results bench/results.json]

Workload (both sides store the same facts: artifact, dataset, code version, hyperparameters,
metrics, lineage, tags):
- create project          ours: create_project             MLflow: create_registered_model
- register (x versions)   ours: register_version           MLflow: create_run + log_batch(params,
                                                            metrics) + create_model_version
- set alias               ours: set_alias (user alias)     MLflow: set_registered_model_alias
- get by alias            ours: resolve_alias (1 GetItem)  MLflow: get_model_version_by_alias
                          (neither checks the caller; the API's role-checked read is printed too)
- filtered listing        ours: one page, status filter    MLflow: search_model_versions with a
                          (50 items)                        tag filter (50 items)
- diff                    ours: diff A B                   MLflow: 2 get_model_version + 2 get_run
                                                            + the same comparison in Python
MLflow's register needs a run to hold hyperparameters and metrics; its bare create_model_version
is printed too, for reference (no target).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / "shared", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "lepton-bench")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Lepton")
for key, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(key, value)

BUDGET = {  # operation -> (DynamoDB operation, calls allowed)
    "register": ("TransactWriteItems", 1),
    "promote": ("TransactWriteItems", 1),
    "get_by_alias": ("GetItem", 1),
    "page": ("Query", 1),
}
PROJECT = "bench"
ACTOR_ARN = "arn:aws:iam::123456789012:user/bench"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


class CallCounter:
    """Counts DynamoDB API calls through one botocore client (`before-call` events)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    @contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        self.calls = Counter()
        self.client.meta.events.register("before-call.dynamodb.*", self._on_call, unique_id="lepton-bench")
        try:
            yield self.calls
        finally:
            self.client.meta.events.unregister("before-call.dynamodb.*", unique_id="lepton-bench")


# --------------------------------------------------------------------------------------- ours


def run_ours(versions: int, repeat: int) -> tuple[dict[str, list[float]], dict[str, Counter[str]]]:
    import boto3

    from lepton.registry.commands import NewProject, RegisterVersion
    from lepton.registry.dynamo import DynamoRegistryRepository, bind, create_table
    from lepton.registry.models import VersionStatus
    from lepton.registry.ports import VersionQuery
    from lepton.registry.service import Actor, RegistryService
    from localcloud.dynamodb_local import DynamoDBLocal

    times: dict[str, list[float]] = {}
    calls: dict[str, Counter[str]] = {}
    actor = Actor(ACTOR_ARN)
    with DynamoDBLocal() as ddb:
        table = "lepton-registry-bench"
        create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint_url), table)
        svc = RegistryService(DynamoRegistryRepository(table, host=ddb.endpoint_url, region="us-east-1"))
        counter = CallCounter(bind(table, ddb.endpoint_url, "us-east-1").connection.connection.client)

        names = iter(f"{PROJECT}-{i}" for i in range(10_000))
        warm_up_dynamodb_local(svc, actor)
        times["create_project"] = timed(lambda: svc.create_project(actor, NewProject(name=next(names))), repeat)
        svc.create_project(actor, NewProject(name=PROJECT))
        dataset = svc.register_dataset(actor, _dataset(PROJECT))
        register_times = []
        for i in range(versions):
            command = RegisterVersion(
                artifact_uri=f"s3://models/job-{i}/model.tar.gz",
                artifact_sha256=f"{i:064x}",
                dataset_id=dataset.dataset_id,
                training_job=f"job-{i}",
                code_version="git-abc123",
                hyperparameters={"epochs": 10 + i % 5, "learning_rate": 0.001 * (1 + i % 3), "optimizer": "adam"},
                metrics={"validation:accuracy": 0.8 + (i % 100) / 1000, "validation:loss": 0.5 - (i % 100) / 1000},
                parent_version=i if i > 0 else None,
                tags={"stage": "candidate" if i % 4 else "shortlist"},
            )
            with counter.counting() as c:
                start = time.perf_counter()
                svc.register_version(actor, PROJECT, command)
                register_times.append(time.perf_counter() - start)
            calls["register"] = c
        times["register"] = register_times
        for n in range(1, versions + 1, 4):
            svc.approve(actor, PROJECT, n, "bench")

        targets = iter(range(1, 10_000))
        times["set_alias"] = timed(
            lambda: svc.set_alias(actor, PROJECT, "champion", next(targets) % versions + 1, "bench"), repeat
        )
        with counter.counting() as c:
            svc.get_alias(actor, PROJECT, "champion")
        calls["get_by_alias (with role check)"] = c
        with counter.counting() as c:
            svc.resolve_alias(PROJECT, "champion")
        calls["get_by_alias"] = c
        times["get_by_alias"] = timed(lambda: svc.resolve_alias(PROJECT, "champion"), repeat)
        times["get_by_alias (API, with role check; no target)"] = timed(
            lambda: svc.get_alias(actor, PROJECT, "champion"), repeat
        )

        query = VersionQuery(status=VersionStatus.APPROVED)
        repo = svc.repo
        with counter.counting() as c:
            page = repo.query_versions(PROJECT, query, 50, None)
        assert len(page.items) == 50, len(page.items)
        calls["page"] = c
        times["filtered_listing"] = timed(lambda: svc.list_versions(actor, PROJECT, query, 50, None), repeat)
        times["diff"] = timed(lambda: svc.diff(actor, PROJECT, 3, versions - 7), repeat)

        # promote: the production alias move (one transaction)
        for n in (1, 5):
            svc.transition(actor, PROJECT, n, VersionStatus.DEPLOYING, "bench")
        svc.promote(actor, PROJECT, 1, "bench")
        with counter.counting() as c:
            svc.promote(actor, PROJECT, 5, "bench")
        calls["promote"] = c
    return times, calls


def warm_up_dynamodb_local(svc: Any, actor: Any, seconds: float = 8.0) -> None:
    """DynamoDB Local is a JVM: its first thousands of requests run interpreted (3-5x slower).
    Exercise every request kind the workload makes until the JIT has compiled them, so that the
    medians are its steady state (MLflow's SQLite gets the same courtesy)."""
    from lepton.registry.commands import NewProject, RegisterVersion
    from lepton.registry.ports import VersionQuery

    svc.create_project(actor, NewProject(name="warm-up"))
    svc.register_dataset(actor, _dataset("warm-up"))
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        svc.register_version(
            actor,
            "warm-up",
            RegisterVersion(
                artifact_uri=f"s3://models/w-{i}/model.tar.gz",
                artifact_sha256="c" * 64,
                dataset_id="ds-0123456789abcdef0123",
                training_job=f"w-{i}",
                code_version="git-abc123",
                metrics={"a": 0.5},
            ),
        )
        svc.set_alias(actor, "warm-up", "champion", i, "warm-up")
        svc.get_alias(actor, "warm-up", "champion")
        svc.list_versions(actor, "warm-up", VersionQuery(), 50, None)
        if i > 1:
            svc.diff(actor, "warm-up", i - 1, i)
        svc.create_project(actor, NewProject(name=f"warm-up-{i}"))


def _dataset(project: str) -> Any:
    from lepton.data.models import ContractSource, DatasetVersion, SourceObject, SplitRows

    return DatasetVersion(
        project=project,
        dataset_id="ds-0123456789abcdef0123",
        content_sha256="a" * 64,
        schema_hash="b" * 64,
        rows=SplitRows(train=70, validation=15, test=15),
        rows_in=100,
        source=SourceObject(bucket="data", key=f"incoming/{project}/a.csv", size=1),
        curated_prefix=f"s3://data/curated/{project}/ds-0123456789abcdef0123/",
        contract_source=ContractSource.DECLARED,
    )


def warm_up_mlflow(client: Any, experiment: str, seconds: float = 3.0) -> None:
    client.create_registered_model("warm-up")
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        i += 1
        run = client.create_run(experiment)
        client.log_param(run.info.run_id, "p", i)
        client.create_model_version("warm-up", source=f"s3://models/w-{i}/model.tar.gz", run_id=run.info.run_id)
        client.set_registered_model_alias("warm-up", "champion", str(i))
        client.get_model_version_by_alias("warm-up", "champion")
        client.search_model_versions("name='warm-up'", max_results=50)
        client.get_run(run.info.run_id)
        client.create_registered_model(f"warm-up-{i}")


# ------------------------------------------------------------------------------------- MLflow


def run_mlflow(versions: int, repeat: int) -> dict[str, list[float]]:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
        names = iter(f"{PROJECT}-{i}" for i in range(10_000))
        warm_up_mlflow(client, experiment)
        times["create_project"] = timed(lambda: client.create_registered_model(next(names)), repeat)
        client.create_registered_model(PROJECT)
        register_times, bare_times = [], []
        for i in range(versions):
            params = {"epochs": 10 + i % 5, "learning_rate": 0.001 * (1 + i % 3), "optimizer": "adam"}
            metrics = {"validation:accuracy": 0.8 + (i % 100) / 1000, "validation:loss": 0.5 - (i % 100) / 1000}
            start = time.perf_counter()
            run = client.create_run(experiment, tags={"dataset_id": "ds-0123456789abcdef0123", "code": "git-abc123"})
            now = int(time.time() * 1000)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in params.items()],
            )
            mid = time.perf_counter()
            client.create_model_version(
                PROJECT,
                source=f"s3://models/job-{i}/model.tar.gz",
                run_id=run.info.run_id,
                tags={"stage": "candidate" if i % 4 else "shortlist", "parent": str(i) if i else ""},
            )
            end = time.perf_counter()
            register_times.append(end - start)
            bare_times.append(end - mid)
        times["register"] = register_times
        times["register (bare create_model_version, no target)"] = bare_times
        targets = iter(range(1, 10_000))
        times["set_alias"] = timed(
            lambda: client.set_registered_model_alias(PROJECT, "champion", str(next(targets) % versions + 1)), repeat
        )
        times["get_by_alias"] = timed(lambda: client.get_model_version_by_alias(PROJECT, "champion"), repeat)
        flt = f"name='{PROJECT}' and tag.stage='shortlist'"
        found = client.search_model_versions(flt, max_results=50)
        assert len(found) == 50, len(found)
        times["filtered_listing"] = timed(lambda: client.search_model_versions(flt, max_results=50), repeat)

        def diff() -> dict[str, Any]:
            a = client.get_model_version(PROJECT, "3")
            b = client.get_model_version(PROJECT, str(versions - 7))
            ra, rb = client.get_run(a.run_id), client.get_run(b.run_id)
            pa, pb = ra.data.params, rb.data.params
            ma, mb = ra.data.metrics, rb.data.metrics
            return {
                "changed": {k: (pa.get(k), pb.get(k)) for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k)},
                "metrics": {k: (mb.get(k, 0.0) - ma.get(k, 0.0)) for k in ma.keys() | mb.keys()},
                "dataset": (ra.data.tags.get("dataset_id"), rb.data.tags.get("dataset_id")),
            }

        times["diff"] = timed(diff, repeat)
    return times


# ------------------------------------------------------------------------------------- report

TARGETED = ["create_project", "register", "set_alias", "get_by_alias", "filtered_listing", "diff"]


def entries(
    ours: dict[str, list[float]], theirs: dict[str, list[float]], calls: dict[str, Counter[str]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for op in TARGETED:
        a, b = median_ms(ours[op]), median_ms(theirs[op])
        out.append(
            {
                "name": f"registry.{op}.median_ms_vs_mlflow",
                "ours": round(a, 3),
                "baseline": round(b, 3),
                "unit": "ms",
                "ratio": round(a / b, 3),
                "target": "<= 1.0",
            }
        )
    for op, (api, allowed) in BUDGET.items():
        made = calls[op][api]
        out.append(
            {
                "name": f"registry.{op}.dynamodb_{api}_calls_vs_budget",
                "ours": made,
                "baseline": allowed,
                "unit": "calls",
                "ratio": round(made / allowed, 3),
                "target": "<= 1.0",
            }
        )
    return out


def write_results(path: Path, new: list[dict[str, Any]]) -> None:
    existing: list[dict[str, Any]] = []
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            existing = loaded if isinstance(loaded, list) else []
        except ValueError:
            existing = []
    names = {e["name"] for e in new}
    merged = [e for e in existing if e.get("name") not in names] + new
    path.write_text(json.dumps(merged, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=50, help="samples per non-register operation")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--no-results", action="store_true", help="print only")
    args = parser.parse_args(argv)

    ours, calls = run_ours(args.versions, args.repeat)
    theirs = run_mlflow(args.versions, args.repeat)
    rows = entries(ours, theirs, calls)

    print(f"registry workload: {args.versions} versions, {args.repeat} samples per other operation")
    print(f"{'operation':<52}{'ours ms':>10}{'MLflow ms':>11}{'ratio':>8}  target")
    for op in TARGETED:
        a, b = median_ms(ours[op]), median_ms(theirs[op])
        verdict = "ok" if a / b <= 1.0 else "MISSED"
        print(f"{op:<52}{a:>10.2f}{b:>11.2f}{a / b:>8.2f}  <= 1.0 {verdict}")
    bare = "register (bare create_model_version, no target)"
    print(f"{'MLflow ' + bare:<52}{'':>10}{median_ms(theirs[bare]):>11.2f}")
    checked = "get_by_alias (API, with role check; no target)"
    print(f"{'ours ' + checked:<52}{median_ms(ours[checked]):>10.2f}")
    print("\nDynamoDB calls per operation (budget)")
    for op, counter in calls.items():
        budget = BUDGET.get(op)
        note = (
            f"budget {budget[1]} {budget[0]}: {'ok' if counter[budget[0]] <= budget[1] else 'OVER'}" if budget else ""
        )
        print(f"  {op:<34}{dict(counter)!s:<48}{note}")
    if not args.no_results:
        write_results(args.results, rows)
        print(f"\nwrote {len(rows)} entries to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
