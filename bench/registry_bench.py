"""The registry workload on this registry (DynamoDB Local) and on MLflow's registry (SQLite,
in-process), in the same run: per-operation medians, ratios ours/MLflow (target <= 1.0) with their
noise, where each side's time goes, and the DynamoDB calls each operation makes against the
round-trip budget.

    python bench/registry_bench.py [--versions 200] [--repeat 1000] [--storage memory disk]
    python -m bench registry          (run(): both storages, entries for bench/results.json)

Storage, the same on both sides (each side keeps its data in SQLite: DynamoDB Local is built on it):
- memory (the targets): DynamoDB Local -inMemory; MLflow's SQLite file on a tmpfs (/dev/shm).
  Neither side writes to a disk, so the ratio measures the registries, not the machine's fsync.
- disk (durable, printed and recorded as registry.durable.*): DynamoDB Local -dbPath and MLflow's
  SQLite file in the same directory on the project's disk. Both sides fsync every commit: each as
  it ships, so their journals differ (printed): DynamoDB Local's database is in SQLite's WAL mode,
  as `lepton local up` keeps it (one fsync per write; localcloud.dynamodb_local), MLflow keeps
  SQLite's default rollback journal (four). An A/B with MLflow's database in WAL mode too
  (create_project only, no target) shows how much of the durable margin that is.

What each side's operation stores (ours always stores more: every change also appends a
hash-chained audit entry in the same atomic write):
- create project   ours: one item: the project, holding its first audit entry and the creator's
                   admin membership (1 conditional PutItem, indexed in gsi2 for "my projects")
                   MLflow: create_registered_model with the creator as a tag (1 commit)
- register         ours: version (artifact, sha256, dataset, job, code, hyperparameters, metrics,
                   parent, tags) + job claim + counter + audit entry (1 read, 1 transaction)
                   MLflow: create_run + log_batch(params, metrics) + create_model_version (tags)
- set alias        ours: alias (with its version's summary) + alias history entry + audit entry
                   MLflow: set_registered_model_alias (the alias row; MLflow keeps no history)
- get by alias     ours: resolve_alias (1 GetItem)   MLflow: get_model_version_by_alias
- filtered listing ours: one page of APPROVED versions (1 Query, 50 items)
                   MLflow: search_model_versions on a tag (the same 50 versions)
- diff             ours: diff A B (1 BatchGetItem)   MLflow: 2 get_model_version + 2 get_run + the
                   same comparison in Python

Fairness: both sides run the same warm-up workload; ours goes on with it until DynamoDB Local's JVM
has served --jvm-requests requests (HotSpot compiles its hot paths only after thousands of calls:
its latency falls about 3x over the first ~6000 requests, then stays flat; MLflow is at its steady
state after a few calls), and the warm-up's first and last rounds are printed for both. Samples are
interleaved (ours, MLflow, then MLflow, ours, ...) so that a shared machine's noise falls on both
alike; ratios are ratios of medians with a 95% bootstrap interval over the paired samples.
Samples: --repeat (1000) per side for every operation but register (--versions, 200: the
workload's 200 versions). At 200 samples the interval of a ratio was about +-5%, so an operation
within 5% of its target got its verdict from noise: the durable create_project gave 0.93 to 1.03
over 13 runs (mean 0.98). 1000 samples narrow it to about +-2%, for about 3 minutes more a run.

Where the time goes (ours): the CPU time of this process inside botocore calls (botocore and
the registry's HTTP transport) and outside them (domain code, pydantic, pynamodb), the CPU time of
DynamoDB Local's JVM, and the rest of the wall time: waiting, mostly for a CPU when the client and
the server hand a request to each other on a busy machine (MLflow runs in-process and never waits that way).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    # the registry runs in Lambda, whose botocore has no awscrt: sign as it does there (see bench/__init__.py)
    "BOTO_DISABLE_CRT": "true",
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
TARGETED = ["create_project", "register", "set_alias", "get_by_alias", "filtered_listing", "diff"]
STORAGES = ("memory", "disk")
TMPFS = Path("/dev/shm")
WAL_AB = "create_project (MLflow in WAL mode too, not its default)"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


# ---------------------------------------------------------------------------------- accounting


class CallCounter:
    """Counts DynamoDB API calls through one botocore client (`before-call` events) and the CPU
    time this process spends inside them (botocore's _make_api_call: serialisation, signing,
    the HTTP transport, parsing; waiting for the answer costs no CPU time)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.cpu_s = 0.0
        self._lock = threading.Lock()
        inner = client._make_api_call

        def timed(operation: str, params: dict[str, Any]) -> Any:
            start = time.process_time()
            try:
                return inner(operation, params)
            finally:
                self.cpu_s += time.process_time() - start

        client._make_api_call = timed

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


def process_cpu_s(pid: int | None) -> float | None:
    """CPU time (user + system) of another process so far, or None where /proc is not there."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Replayer:
    """DynamoDB Local's own time for exactly the requests an operation makes: the operation runs
    with its request captured instead of sent (botocore's before-send gets a canned empty 200),
    then that request goes to DynamoDB Local over a plain HTTP connection, timed from the first
    byte sent to the last byte read. No SDK, no domain code: the server's floor."""

    def __init__(self, client: Any, endpoint: str) -> None:
        self.client = client
        url = urlsplit(endpoint)
        self.connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        self.captured: list[Any] = []

    def _capture(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        from lepton.registry.transport import BytesBody

        self.captured.append(request)
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 200, headers, BytesBody(b"{}"))

    def capture(self, operation: Callable[[], Any]) -> list[Any]:
        self.captured = []
        self.client.meta.events.register_first("before-send.dynamodb.*", self._capture, unique_id="lepton-replay")
        try:
            operation()
        finally:
            self.client.meta.events.unregister("before-send.dynamodb.*", unique_id="lepton-replay")
        return self.captured

    def send(self, request: Any) -> float:
        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        start = time.perf_counter()
        self.connection.request(request.method, urlsplit(request.url).path or "/", body, headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"the replayed request failed: {response.status} {data[:300]!r}")
        return elapsed


def filesystem_of(path: Path) -> str:
    """The filesystem type a path lives on (from /proc/mounts), to show what 'disk' means here."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved, best = str(path.resolve()), ("", "unknown")
    for mount in mounts:
        point, kind = mount[1], mount[2]
        if (resolved == point or resolved.startswith(point.rstrip("/") + "/")) and len(point) > len(best[0]):
            best = (point, kind)
    return best[1]


# ------------------------------------------------------------------------------------ workload


def hyperparameters(i: int) -> dict[str, Any]:
    return {"epochs": 10 + i % 5, "learning_rate": 0.001 * (1 + i % 3), "optimizer": "adam"}


def metrics(i: int) -> dict[str, float]:
    return {"validation:accuracy": 0.8 + (i % 100) / 1000, "validation:loss": 0.5 - (i % 100) / 1000}


def stage(i: int) -> str:
    return "candidate" if i % 4 else "shortlist"


def sample_dataset(project: str) -> Any:
    """A dataset version with the id the sample events in events/ name (ds-0123456789abcdef0123)."""
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

    def __init__(self, endpoint: str, jvm_pid: int | None) -> None:
        import boto3

        from lepton.registry.dynamo import DynamoRegistryRepository, bind, create_table
        from lepton.registry.service import Actor, RegistryService

        table = "lepton-registry-bench"
        create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint), table)
        self.svc = RegistryService(DynamoRegistryRepository(table, host=endpoint, region="us-east-1"))
        self.counter = CallCounter(bind(table, endpoint, "us-east-1").connection.connection.client)
        self.actor = Actor(ACTOR_ARN)
        self.jvm_pid = jvm_pid
        self.calls: dict[str, Counter[str]] = {}

    def setup(self, project: str) -> None:
        self.create_project(project)
        self.svc.register_dataset(self.actor, sample_dataset(project))

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
        self.svc.register_version(self.actor, project, command)

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
        """The DynamoDB calls of each operation, against the round-trip budget."""
        from lepton.registry.models import VersionStatus
        from lepton.registry.ports import VersionQuery

        with self.counter.counting() as c:
            self.register(project, versions)  # a new version whose parent is the last one
        self.calls["register"] = c
        with self.counter.counting() as c:
            self.svc.resolve_alias(project, "champion")
        self.calls["get_by_alias"] = c
        with self.counter.counting() as c:
            self.svc.get_alias(self.actor, project, "champion")
        self.calls["get_by_alias (API, with role check)"] = c
        with self.counter.counting() as c:
            self.svc.repo.query_versions(project, VersionQuery(status=VersionStatus.APPROVED), 50, None)
        self.calls["page"] = c
        with self.counter.counting() as c:
            self.set_alias(project, 2)
        self.calls["set_alias"] = c
        for n in (1, 5):
            self.svc.transition(self.actor, project, n, VersionStatus.DEPLOYING, "bench")
        self.svc.promote(self.actor, project, 1, "bench")
        with self.counter.counting() as c:
            self.svc.promote(self.actor, project, 5, "bench")
        self.calls["promote"] = c


class Mlflow:
    """MLflow's model registry on SQLite, in-process (tracking store for runs, same database)."""

    name = "MLflow"

    def __init__(self, directory: Path, *, write_ahead_log: bool = False) -> None:
        """write_ahead_log: put the database in SQLite's WAL mode first (MLflow itself keeps SQLite's
        default rollback journal; only the disk A/B of create_project uses this)."""
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore")
        from mlflow import MlflowClient

        directory.mkdir(parents=True, exist_ok=True)
        self.database = directory / "mlflow.db"
        if write_ahead_log:
            from localcloud.dynamodb_local import use_write_ahead_log

            use_write_ahead_log(self.database)
        uri = f"sqlite:///{self.database}"
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self.experiment = self.client.create_experiment("bench", artifact_location=f"{directory}/artifacts")

    def setup(self, project: str) -> None:
        self.create_project(project)

    def create_project(self, name: str) -> None:
        # ours records the creator as the project's admin: MLflow keeps it as a tag
        self.client.create_registered_model(name, tags={"admin": ACTOR_ARN})

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


# --------------------------------------------------------------------------------- measurement


@dataclass
class OpTimes:
    """Wall times per side, plus CPU totals: this process (inside botocore / all) and the JVM."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    botocore_cpu: float = 0.0
    jvm_cpu: float | None = 0.0


@dataclass
class Measurement:
    storage: str
    where: dict[str, str]
    times: dict[str, OpTimes]
    calls: dict[str, Counter[str]]
    warm_up: dict[str, Any]
    load: tuple[float, float]
    floor: dict[str, list[float]] = field(default_factory=dict)


def interleaved(ours: Ours, ops: dict[str, Callable[[int], Any]], repeat: int) -> OpTimes:
    """Time `repeat` calls of each side's operation, alternating sides (and which goes first),
    so that the machine's noise falls on both alike; account each side's CPU time."""
    out = OpTimes(wall={name: [] for name in ops}, cpu=dict.fromkeys(ops, 0.0))
    names = list(ops)
    for i in range(repeat):
        for name in names if i % 2 == 0 else reversed(names):
            jvm0 = process_cpu_s(ours.jvm_pid) if name == "ours" else None
            boto0 = ours.counter.cpu_s
            cpu0, start = time.process_time(), time.perf_counter()
            ops[name](i)
            out.wall[name].append(time.perf_counter() - start)
            out.cpu[name] += time.process_time() - cpu0
            if name == "ours":
                out.botocore_cpu += ours.counter.cpu_s - boto0
                jvm1 = process_cpu_s(ours.jvm_pid)
                out.jvm_cpu = None if jvm0 is None or jvm1 is None or out.jvm_cpu is None else out.jvm_cpu + jvm1 - jvm0
    return out


def warm_up(ours: Ours, theirs: Mlflow, rounds_both: int, jvm_requests: int, max_s: float) -> dict[str, Any]:
    """The same warm-up workload on both sides for `rounds_both` rounds; then ours alone until
    DynamoDB Local has served `jvm_requests` requests (or `max_s` passed). Returns the first and
    last round times of each side, to show that both reached their steady state."""
    rounds: dict[str, list[float]] = {"ours": [], "MLflow": []}
    deadline = time.monotonic() + max_s
    w = 0
    with ours.counter.counting() as served:
        for side in (ours, theirs):
            side.setup("warm-up")
        while w < rounds_both or (sum(served.values()) < jvm_requests and time.monotonic() < deadline):
            if w:
                ours.svc.approve(ours.actor, "warm-up", w, "warm-up")
            sides: tuple[Ours | Mlflow, ...] = (ours, theirs) if w < rounds_both else (ours,)
            for side in sides:
                start = time.perf_counter()
                side.register("warm-up", w)  # version w + 1
                side.set_alias("warm-up", w + 1)
                side.get_by_alias("warm-up")
                side.filtered_listing("warm-up")
                if w:
                    side.diff("warm-up", w, w + 1)
                side.create_project(f"warm-up-{w}")
                rounds[side.name].append(time.perf_counter() - start)
            w += 1
        total = sum(served.values())
    return {
        "iterations": {"ours": len(rounds["ours"]), "MLflow": len(rounds["MLflow"])},
        "jvm_requests": total,
        "first_ms": {k: v[0] * 1000 for k, v in rounds.items() if v},
        "steady_ms": {k: statistics.median(v[-5:]) * 1000 for k, v in rounds.items() if v},
    }


@contextmanager
def storage_for(kind: str) -> Iterator[tuple[Any, Path, dict[str, str]]]:
    """DynamoDB Local and a directory for MLflow's database, both in memory or both on disk."""
    from localcloud.dynamodb_local import DynamoDBLocal

    with ExitStack() as stack:
        if kind == "memory":
            base = TMPFS if TMPFS.is_dir() and os.access(TMPFS, os.W_OK) else None
            mlflow_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lepton-bench-", dir=base)))
            ddb = stack.enter_context(DynamoDBLocal())
            where = {"DynamoDB Local": "-inMemory", "MLflow": f"{mlflow_dir} ({filesystem_of(mlflow_dir)})"}
        else:
            data = ROOT / "bench" / ".data"
            data.mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix="registry-", dir=data))
            stack.callback(shutil.rmtree, directory, True)
            ddb = stack.enter_context(DynamoDBLocal(db_path=directory / "dynamodb"))
            mlflow_dir = directory
            where = {"both": f"{directory} ({filesystem_of(directory)})"}
        yield ddb, mlflow_dir, where


def measure(
    storage: str,
    *,
    versions: int = 200,
    repeat: int = 1000,
    jvm_requests: int = 10_000,
    warm_up_max_s: float = 240.0,
) -> Measurement:
    load_before = os.getloadavg()[0]
    times: dict[str, OpTimes] = {}
    with storage_for(storage) as (ddb, mlflow_dir, where):
        process = getattr(ddb, "_process", None)
        ours, theirs = Ours(ddb.endpoint_url, process.pid if process else None), Mlflow(mlflow_dir)
        warm = warm_up(ours, theirs, rounds_both=30, jvm_requests=jvm_requests, max_s=warm_up_max_s)

        names = (f"{PROJECT}-{i}" for i in range(100_000))
        times["create_project"] = interleaved(
            ours,
            {
                "ours": lambda i: ours.create_project(f"o-{next(names)}"),
                "MLflow": lambda i: theirs.create_project(f"m-{next(names)}"),
            },
            repeat,
        )
        if storage == "disk":
            from localcloud.dynamodb_local import SHARED_DB_FILE, journal_mode

            ddb_journal = journal_mode(ddb.db_path / SHARED_DB_FILE)
            where["journal"] = f"DynamoDB Local {ddb_journal}, MLflow {journal_mode(theirs.database)}"
            times[WAL_AB] = create_project_on_wal(ours, mlflow_dir / "wal", names, repeat)
        for side in (ours, theirs):
            side.setup(PROJECT)
        times["register"] = interleaved(
            ours,
            {"ours": lambda i: ours.register(PROJECT, i), "MLflow": lambda i: theirs.register(PROJECT, i)},
            versions,
        )
        times["register (MLflow bare create_model_version, no target)"] = interleaved(
            ours, {"MLflow": lambda i: theirs.register_bare("warm-up", 10_000 + i)}, repeat
        )
        times["set_alias"] = interleaved(
            ours,
            {
                "ours": lambda i: ours.set_alias(PROJECT, i % versions + 1),
                "MLflow": lambda i: theirs.set_alias(PROJECT, i % versions + 1),
            },
            repeat,
        )
        times["get_by_alias"] = interleaved(
            ours,
            {"ours": lambda i: ours.get_by_alias(PROJECT), "MLflow": lambda i: theirs.get_by_alias(PROJECT)},
            repeat,
        )
        times["get_by_alias (ours via the API, with role check, no target)"] = interleaved(
            ours, {"ours": lambda i: ours.get_by_alias_checked(PROJECT)}, repeat
        )
        ours.shortlist(PROJECT, versions)
        assert ours.filtered_listing(PROJECT) == theirs.filtered_listing(PROJECT) == min(50, len(range(0, versions, 4)))
        times["filtered_listing"] = interleaved(
            ours,
            {"ours": lambda i: ours.filtered_listing(PROJECT), "MLflow": lambda i: theirs.filtered_listing(PROJECT)},
            repeat,
        )
        a, b = 3, versions - 7
        times["diff"] = interleaved(
            ours, {"ours": lambda i: ours.diff(PROJECT, a, b), "MLflow": lambda i: theirs.diff(PROJECT, a, b)}, repeat
        )
        floor = server_floor(ours, theirs, ddb.endpoint_url, repeat)
        ours.count_calls(PROJECT, versions)
    return Measurement(storage, where, times, ours.calls, warm, (load_before, os.getloadavg()[0]), floor)


def create_project_on_wal(ours: Ours, directory: Path, names: Iterator[str], repeat: int) -> OpTimes:
    """The disk A/B: ours against MLflow with its database in WAL mode too (not MLflow's default),
    so that the report shows how much of the durable create_project's margin is the journal mode."""
    from localcloud.dynamodb_local import journal_mode

    theirs = Mlflow(directory, write_ahead_log=True)
    assert journal_mode(theirs.database) == "wal"
    theirs.setup("warm-up")
    for _ in range(30):
        theirs.create_project(f"w-{next(names)}")
    return interleaved(
        ours,
        {
            "ours": lambda i: ours.create_project(f"o-{next(names)}"),
            "MLflow": lambda i: theirs.create_project(f"w-{next(names)}"),
        },
        repeat,
    )


def server_floor(ours: Ours, theirs: Mlflow, endpoint: str, repeat: int) -> dict[str, list[float]]:
    """create_project's one request (a PutItem), replayed straight to DynamoDB Local, interleaved
    with MLflow's whole create_registered_model: how low ours could go with a free client."""
    replay = Replayer(ours.counter.client, endpoint)
    names = (f"floor-{i}" for i in range(100_000))

    times: dict[str, list[float]] = {"ours": [], "MLflow": []}
    for i in range(repeat):
        for side in ("ours", "MLflow") if i % 2 == 0 else ("MLflow", "ours"):
            if side == "ours":
                project = f"o-{next(names)}"
                (request,) = replay.capture(partial(ours.create_project, project))
                times["ours"].append(replay.send(request))
            else:
                start = time.perf_counter()
                theirs.create_project(f"m-{next(names)}")
                times["MLflow"].append(time.perf_counter() - start)
    return times


def ratio_interval(ours: list[float], theirs: list[float], resamples: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of median(ours) / median(theirs), resampling the interleaved pairs."""
    rng = random.Random(20240501)
    n = min(len(ours), len(theirs))
    values = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        values.append(statistics.median(ours[i] for i in picks) / statistics.median(theirs[i] for i in picks))
    values.sort()
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


# -------------------------------------------------------------------------------------- report


def entries(measurement: Measurement) -> list[dict[str, Any]]:
    prefix = "registry." if measurement.storage == "memory" else "registry.durable."
    out: list[dict[str, Any]] = []
    for op in TARGETED:
        wall = measurement.times[op].wall
        a, b = median_ms(wall["ours"]), median_ms(wall["MLflow"])
        out.append(
            {
                "name": f"{prefix}{op}.median_ms_vs_mlflow",
                "ours": round(a, 3),
                "baseline": round(b, 3),
                "unit": "ms",
                "ratio": round(a / b, 3),
                "target": "<= 1.0",
            }
        )
    if measurement.storage == "memory":
        for op, (api, allowed) in BUDGET.items():
            made = measurement.calls[op][api]
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


def report(m: Measurement) -> None:
    print(f"\n== registry workload, storage: {m.storage}  ({', '.join(f'{k}: {v}' for k, v in m.where.items())})")
    w = m.warm_up
    print(
        f"warm-up: ours {w['iterations']['ours']} rounds, MLflow {w['iterations']['MLflow']} rounds; DynamoDB Local "
        f"served {w['jvm_requests']} requests; round time first -> steady: "
        + ", ".join(f"{k} {w['first_ms'][k]:.0f} -> {w['steady_ms'][k]:.0f} ms" for k in w["first_ms"])
    )
    print(f"load average (1 min) before/after: {m.load[0]:.2f} / {m.load[1]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'operation (median ms)':<60}{'ours':>8}{'MLflow':>9}{'ratio':>7}  {'95% interval':<14}target")
    for op, t in m.times.items():
        a = median_ms(t.wall["ours"]) if "ours" in t.wall else None
        b = median_ms(t.wall["MLflow"]) if "MLflow" in t.wall else None
        ours_txt = f"{a:>8.2f}" if a is not None else f"{'':>8}"
        theirs_txt = f"{b:>9.2f}" if b is not None else f"{'':>9}"
        if op in TARGETED and a is not None and b is not None:
            lo, hi = ratio_interval(t.wall["ours"], t.wall["MLflow"])
            verdict = "ok" if a / b <= 1.0 else "MISSED"
            print(f"{op:<60}{ours_txt}{theirs_txt}{a / b:>7.2f}  [{lo:.2f}, {hi:.2f}]  <= 1.0 {verdict}")
        elif a is not None and b is not None:
            lo, hi = ratio_interval(t.wall["ours"], t.wall["MLflow"])
            print(f"{op:<60}{ours_txt}{theirs_txt}{a / b:>7.2f}  [{lo:.2f}, {hi:.2f}]  no target")
        else:
            print(f"{op:<60}{ours_txt}{theirs_txt}")
    print(
        "\nwhere ours' time goes (mean ms per operation): CPU in this process inside botocore calls (botocore "
        "and the HTTP transport) + outside them (domain code, pydantic, pynamodb) + DynamoDB Local's JVM CPU "
        "(all its threads, JIT and GC included) + the rest (waiting: I/O, and for a CPU when client and server "
        "hand a request over; negative when the JVM's background threads ran on another CPU meanwhile) = mean wall time"
    )
    for op in TARGETED:
        t = m.times[op]
        n, n_theirs = len(t.wall["ours"]), len(t.wall["MLflow"])
        boto = t.botocore_cpu / n * 1000
        own = t.cpu["ours"] / n * 1000 - boto
        jvm = t.jvm_cpu / n * 1000 if t.jvm_cpu is not None else 0.0
        wall = statistics.mean(t.wall["ours"]) * 1000
        theirs_cpu, theirs_wall = t.cpu["MLflow"] / n_theirs * 1000, statistics.mean(t.wall["MLflow"]) * 1000
        jvm_text = f"{jvm:6.2f}" if t.jvm_cpu is not None else "   n/a"
        print(
            f"  {op:<17} botocore {boto:5.2f} + own code {own:5.2f} + JVM {jvm_text} + waiting "
            f"{wall - boto - own - jvm:5.2f} = {wall:6.2f}   MLflow: CPU {theirs_cpu:6.2f} of {theirs_wall:6.2f}"
        )
    if m.floor:
        a, b = median_ms(m.floor["ours"]), median_ms(m.floor["MLflow"])
        lo, hi = ratio_interval(m.floor["ours"], m.floor["MLflow"])
        print(
            f"\nserver floor of create_project: its PutItem sent to DynamoDB Local over plain HTTP (no SDK, "
            f"no domain code) {a:.2f} ms vs MLflow's whole create_registered_model {b:.2f} ms: ratio {a / b:.2f} "
            f"[{lo:.2f}, {hi:.2f}]"
        )
    print("\nDynamoDB calls per operation (budget)")
    for op, counter in m.calls.items():
        budget = BUDGET.get(op)
        note = ""
        if budget:
            note = f"budget {budget[1]} {budget[0]}: {'ok' if counter[budget[0]] <= budget[1] else 'OVER'}"
        print(f"  {op:<38}{dict(counter)!s:<52}{note}")


def run(
    storages: tuple[str, ...] = STORAGES,
    *,
    versions: int = 200,
    repeat: int = 1000,
    jvm_requests: int = 10_000,
) -> list[dict[str, Any]]:
    """Measure the workload on each storage and return the bench/results.json entries."""
    out: list[dict[str, Any]] = []
    for storage in storages:
        m = measure(storage, versions=versions, repeat=repeat, jvm_requests=jvm_requests)
        report(m)
        out += entries(m)
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
    parser.add_argument("--repeat", type=int, default=1000, help="samples per non-register operation")
    parser.add_argument("--storage", nargs="+", choices=STORAGES, default=list(STORAGES))
    parser.add_argument(
        "--jvm-requests", type=int, default=10_000, help="requests DynamoDB Local serves during the warm-up"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--no-results", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rows = run(tuple(args.storage), versions=args.versions, repeat=args.repeat, jvm_requests=args.jvm_requests)
    if not args.no_results:
        write_results(args.results, rows)
        print(f"\nwrote {len(rows)} entries to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
