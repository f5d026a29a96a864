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
Operations are measured interleaved (ours, MLflow, MLflow, ours, ...) after the same warm-up
workload on both, so that the noise of a shared machine falls on both sides alike.
- filtered listing        ours: one page of APPROVED       MLflow: search_model_versions with a
                          versions (50 items, 1 Query)      tag filter (the same 50 versions)
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


def hyperparameters(i: int) -> dict[str, Any]:
    return {"epochs": 10 + i % 5, "learning_rate": 0.001 * (1 + i % 3), "optimizer": "adam"}


def metrics(i: int) -> dict[str, float]:
    return {"validation:accuracy": 0.8 + (i % 100) / 1000, "validation:loss": 0.5 - (i % 100) / 1000}


def stage(i: int) -> str:
    return "candidate" if i % 4 else "shortlist"


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


class Ours:
    """This registry: the domain service over DynamoDB Local."""

    name = "ours"

    def __init__(self, endpoint: str) -> None:
        import boto3

        from lepton.registry.dynamo import DynamoRegistryRepository, bind, create_table
        from lepton.registry.service import Actor, RegistryService

        table = "lepton-registry-bench"
        create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint), table)
        self.svc = RegistryService(DynamoRegistryRepository(table, host=endpoint, region="us-east-1"))
        self.counter = CallCounter(bind(table, endpoint, "us-east-1").connection.connection.client)
        self.actor = Actor(ACTOR_ARN)
        self.calls: dict[str, Counter[str]] = {}
        self.versions = 0

    def setup(self, project: str) -> None:
        self.create_project(project)
        self.svc.register_dataset(self.actor, _dataset(project))

    def create_project(self, name: str) -> None:
        from lepton.registry.commands import NewProject

        self.svc.create_project(self.actor, NewProject(name=name))

    def register(self, project: str, i: int) -> None:
        from lepton.registry.commands import RegisterVersion

        command = RegisterVersion(
            artifact_uri=f"s3://models/job-{i}/model.tar.gz",
            artifact_sha256=f"{i:064x}",
            dataset_id="ds-0123456789abcdef0123",
            training_job=f"job-{i}",
            code_version="git-abc123",
            hyperparameters=hyperparameters(i),
            metrics=metrics(i),
            parent_version=i if i > 0 else None,
            tags={"stage": stage(i)},
        )
        with self.counter.counting() as c:
            self.svc.register_version(self.actor, project, command)
        self.calls["register"] = c

    def set_alias(self, project: str, version: int) -> None:
        self.svc.set_alias(self.actor, project, "champion", version, "bench")

    def get_by_alias(self, project: str) -> None:
        assert self.svc.resolve_alias(project, "champion") is not None

    def get_by_alias_checked(self, project: str) -> None:
        self.svc.get_alias(self.actor, project, "champion")

    def filtered_listing(self, project: str) -> int:
        from lepton.registry.models import VersionStatus
        from lepton.registry.ports import VersionQuery

        query = VersionQuery(status=VersionStatus.APPROVED)
        return len(self.svc.list_versions(self.actor, project, query, 50, None).items)

    def shortlist(self, project: str, versions: int) -> None:
        """Approve the shortlisted versions (every 4th), which MLflow marks with a tag."""
        for i in range(0, versions, 4):
            self.svc.approve(self.actor, project, i + 1, "shortlisted")

    def diff(self, project: str, a: int, b: int) -> None:
        self.svc.diff(self.actor, project, a, b)

    def count_calls(self, project: str, versions: int) -> None:
        from lepton.registry.models import VersionStatus
        from lepton.registry.ports import VersionQuery

        with self.counter.counting() as c:
            self.svc.resolve_alias(project, "champion")
        self.calls["get_by_alias"] = c
        with self.counter.counting() as c:
            self.svc.get_alias(self.actor, project, "champion")
        self.calls["get_by_alias (API, with role check)"] = c
        with self.counter.counting() as c:
            self.svc.repo.query_versions(project, VersionQuery(status=VersionStatus.APPROVED), 50, None)
        self.calls["page"] = c
        for n in (1, 5):
            self.svc.transition(self.actor, project, n, VersionStatus.DEPLOYING, "bench")
        self.svc.promote(self.actor, project, 1, "bench")
        with self.counter.counting() as c:
            self.svc.promote(self.actor, project, 5, "bench")
        self.calls["promote"] = c


class Mlflow:
    """MLflow's model registry on SQLite, in-process (tracking store for runs, same database)."""

    name = "MLflow"

    def __init__(self, directory: str) -> None:
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore")
        from mlflow import MlflowClient

        uri = f"sqlite:///{directory}/mlflow.db"
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.experiment = self.client.create_experiment("bench", artifact_location=f"{directory}/artifacts")

    def setup(self, project: str) -> None:
        self.create_project(project)

    def create_project(self, name: str) -> None:
        self.client.create_registered_model(name)

    def register(self, project: str, i: int) -> None:
        from mlflow.entities import Metric, Param

        run = self.client.create_run(
            self.experiment, tags={"dataset_id": "ds-0123456789abcdef0123", "code": "git-abc123"}
        )
        now = int(time.time() * 1000)
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics(i).items()],
            params=[Param(k, str(v)) for k, v in hyperparameters(i).items()],
        )
        self.register_bare(project, i, run.info.run_id)

    def register_bare(self, project: str, i: int, run_id: str | None = None) -> None:
        self.client.create_model_version(
            project,
            source=f"s3://models/job-{i}/model.tar.gz",
            run_id=run_id,
            tags={"stage": stage(i), "parent": str(i) if i else ""},
        )

    def set_alias(self, project: str, version: int) -> None:
        self.client.set_registered_model_alias(project, "champion", str(version))

    def get_by_alias(self, project: str) -> None:
        self.client.get_model_version_by_alias(project, "champion")

    def filtered_listing(self, project: str) -> int:
        return len(self.client.search_model_versions(f"name='{project}' and tag.stage='shortlist'", max_results=50))

    def diff(self, project: str, a: int, b: int) -> dict[str, Any]:
        va, vb = self.client.get_model_version(project, str(a)), self.client.get_model_version(project, str(b))
        assert va.run_id is not None and vb.run_id is not None
        ra, rb = self.client.get_run(va.run_id), self.client.get_run(vb.run_id)
        pa, pb, ma, mb = ra.data.params, rb.data.params, ra.data.metrics, rb.data.metrics
        return {
            "changed": {k: (pa.get(k), pb.get(k)) for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k)},
            "metrics": {k: (mb.get(k, 0.0) - ma.get(k, 0.0)) for k in ma.keys() | mb.keys()},
            "dataset": (ra.data.tags.get("dataset_id"), rb.data.tags.get("dataset_id")),
        }


Times = dict[str, dict[str, list[float]]]


def interleaved(ops: dict[str, Callable[[int], Any]], repeat: int) -> dict[str, list[float]]:
    """Time `repeat` calls of each side's operation, alternating sides (and which goes first),
    so that the machine's noise falls on both alike."""
    out: dict[str, list[float]] = {name: [] for name in ops}
    names = list(ops)
    for i in range(repeat):
        for name in names if i % 2 == 0 else reversed(names):
            start = time.perf_counter()
            ops[name](i)
            out[name].append(time.perf_counter() - start)
    return out


def run(
    versions: int, repeat: int, warm_up_s: float
) -> tuple[dict[str, dict[str, list[float]]], dict[str, Counter[str]]]:
    from localcloud.dynamodb_local import DynamoDBLocal

    times: Times = {}
    with DynamoDBLocal() as ddb, tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Ours(ddb.endpoint_url), Mlflow(tmp)
        # warm-up: DynamoDB Local is a JVM whose first thousands of requests run interpreted (3-5x
        # slower); MLflow's SQLAlchemy caches its statements. Both get the same warm-up workload.
        deadline = time.monotonic() + warm_up_s
        w = 0
        for side in (ours, theirs):
            side.setup("warm-up")
        while time.monotonic() < deadline:
            if w:
                ours.svc.approve(ours.actor, "warm-up", w, "warm-up")
            for side in (ours, theirs):
                side.register("warm-up", w)  # version w + 1
                side.set_alias("warm-up", w + 1)
                side.get_by_alias("warm-up")
                side.filtered_listing("warm-up")
                if w:
                    side.diff("warm-up", w, w + 1)
                side.create_project(f"warm-up-{w}")
            w += 1

        names = (f"{PROJECT}-{i}" for i in range(10_000))
        times["create_project"] = interleaved(
            {
                "ours": lambda i: ours.create_project(f"o-{next(names)}"),
                "MLflow": lambda i: theirs.create_project(f"m-{next(names)}"),
            },
            repeat,
        )
        for side in (ours, theirs):
            side.setup(PROJECT)
        times["register"] = interleaved(
            {"ours": lambda i: ours.register(PROJECT, i), "MLflow": lambda i: theirs.register(PROJECT, i)}, versions
        )
        times["register (MLflow bare create_model_version, no target)"] = interleaved(
            {"MLflow": lambda i: theirs.register_bare("warm-up", 10_000 + i)}, repeat
        )
        times["set_alias"] = interleaved(
            {
                "ours": lambda i: ours.set_alias(PROJECT, i % versions + 1),
                "MLflow": lambda i: theirs.set_alias(PROJECT, i % versions + 1),
            },
            repeat,
        )
        times["get_by_alias"] = interleaved(
            {"ours": lambda i: ours.get_by_alias(PROJECT), "MLflow": lambda i: theirs.get_by_alias(PROJECT)}, repeat
        )
        times["get_by_alias (ours via the API, with role check, no target)"] = interleaved(
            {"ours": lambda i: ours.get_by_alias_checked(PROJECT)}, repeat
        )
        ours.shortlist(PROJECT, versions)
        assert ours.filtered_listing(PROJECT) == theirs.filtered_listing(PROJECT) == 50
        times["filtered_listing"] = interleaved(
            {"ours": lambda i: ours.filtered_listing(PROJECT), "MLflow": lambda i: theirs.filtered_listing(PROJECT)},
            repeat,
        )
        a, b = 3, versions - 7
        times["diff"] = interleaved(
            {"ours": lambda i: ours.diff(PROJECT, a, b), "MLflow": lambda i: theirs.diff(PROJECT, a, b)}, repeat
        )
        ours.count_calls(PROJECT, versions)
    return times, ours.calls


# ------------------------------------------------------------------------------------- report

TARGETED = ["create_project", "register", "set_alias", "get_by_alias", "filtered_listing", "diff"]


def entries(times: dict[str, dict[str, list[float]]], calls: dict[str, Counter[str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for op in TARGETED:
        a, b = median_ms(times[op]["ours"]), median_ms(times[op]["MLflow"])
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=100, help="samples per non-register operation")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds of warm-up workload")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--no-results", action="store_true", help="print only")
    args = parser.parse_args(argv)

    times, calls = run(args.versions, args.repeat, args.warm_up)
    rows = entries(times, calls)

    print(f"registry workload: {args.versions} versions, {args.repeat} samples per other operation, interleaved")
    print(f"{'operation (median)':<58}{'ours ms':>9}{'MLflow ms':>11}{'ratio':>8}  target")
    for op, sides in times.items():
        a = median_ms(sides["ours"]) if "ours" in sides else None
        b = median_ms(sides["MLflow"]) if "MLflow" in sides else None
        ours_txt = f"{a:>9.2f}" if a is not None else f"{'':>9}"
        theirs_txt = f"{b:>11.2f}" if b is not None else f"{'':>11}"
        if op in TARGETED and a is not None and b is not None:
            verdict = "ok" if a / b <= 1.0 else "MISSED"
            print(f"{op:<58}{ours_txt}{theirs_txt}{a / b:>8.2f}  <= 1.0 {verdict}")
        else:
            print(f"{op:<58}{ours_txt}{theirs_txt}")
    print("\nDynamoDB calls per operation (budget)")
    for op, counter in calls.items():
        budget = BUDGET.get(op)
        note = ""
        if budget:
            note = f"budget {budget[1]} {budget[0]}: {'ok' if counter[budget[0]] <= budget[1] else 'OVER'}"
        print(f"  {op:<38}{dict(counter)!s:<50}{note}")
    if not args.no_results:
        write_results(args.results, rows)
        print(f"\nwrote {len(rows)} entries to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
