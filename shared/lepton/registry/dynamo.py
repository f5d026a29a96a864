"""The registry in one DynamoDB table, through pynamodb.

Single-table design (keys are strings; numbers are zero-padded to 10 digits so they sort):

| item            | pk              | sk                                 | index keys                       |
|-----------------|-----------------|------------------------------------|----------------------------------|
| project         | PROJECT#<p>     | PROJECT                            | gsi2 MEMBER#<creator> / PROJECT#<p> (*) |
| model version   | PROJECT#<p>     | VERSION#<n>                        | gsi1 <p>#STATUS#<status> / <n>;  |
|                 |                 |                                    | gsi2 <p>#BRANCH#<branch> / <n>   |
| alias           | PROJECT#<p>     | ALIAS#<name>                       |                                  |
| alias history   | PROJECT#<p>     | AHIST#<alias>#<at ISO>#<audit seq> |                                  |
| audit entry     | PROJECT#<p>     | AUDIT#<seq>                        |                                  |
| dataset version | PROJECT#<p>     | DATASET#<dataset_id>               | gsi1 <p>#DATASETS / <number>     |
| rejection       | PROJECT#<p>     | REJECTION#<rejection_id>           | gsi1 <p>#REJECTIONS / <at>#<id>  |
| run             | PROJECT#<p>     | RUN#<run_id>                       |                                  |
| job claim       | PROJECT#<p>     | JOB#<training_job>                 |                                  |
| membership      | PRINCIPAL#<arn> | PROJECT#<p>                        | gsi2 MEMBER#<arn> / PROJECT#<p>  |

Each item keeps its pydantic record as JSON in `body`, plus the top-level attributes that
conditions, indexes and filters need (`audit_seq`, `status`, `version`, `core_digest`, `tags`).

(*) A new project is ONE item, written by one conditional PutItem: the project item also holds the
audit log's first entry (`genesis`, the `project.created` entry, seq 1) and, in `gsi2pk`/`gsi2sk`/
`role`, its creator's membership (the "my projects" index lists project items and membership items
alike through gsi2). A membership change for the creator moves it to a membership item (the
project item's index keys are removed in the same transaction). Later changes UPDATE the project
item (SET), so the genesis entry stays as written.

Round trips: get by alias = 1 GetItem; create project = 1 PutItem; register, promote and every
other change = 1 TransactWriteItems (after the reads that give its preconditions); a page of a
listing = 1 Query (the first page of the audit log oldest first, or its last newest first, adds a
GetItem for the genesis entry).

The pynamodb models are bound to a table and endpoint at call time by `bind(table, host,
region)` (cached): every bound class shares one botocore client.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

import botocore
from botocore.config import Config
from pydantic import BaseModel
from pynamodb.attributes import BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import TableConnection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from lepton.data.models import DatasetRejection, DatasetVersion
from lepton.errors import IntegrityError
from lepton.registry import cursor as cursors
from lepton.registry.models import (
    Alias,
    AliasHistoryEntry,
    AuditEntry,
    Membership,
    ModelVersion,
    Project,
    Run,
    RunStatus,
    normalise_principal,
)
from lepton.registry.ports import Change, CommitConflict, JobClaim, Page, Snapshot, VersionQuery
from lepton.registry.transport import KeepAliveTransport

M = TypeVar("M", bound=BaseModel)
I = TypeVar("I", bound="RegistryItem")  # noqa: E741

PAD = 10


def num(n: int) -> str:
    return f"{n:0{PAD}d}"


def project_pk(project: str) -> str:
    return f"PROJECT#{project}"


def member_key(principal: str) -> str:
    """gsi2's partition of a principal's memberships (the "my projects" index)."""
    return f"MEMBER#{principal}"


# ------------------------------------------------------------------------------------ pynamodb


class Gsi1(GlobalSecondaryIndex["RegistryItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["RegistryItem"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class RegistryItem(Model):
    """What every item of the registry table has. Unbound: use `bind(...)` to get usable classes."""

    class Meta:
        table_name = "lepton-registry-unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    body = UnicodeAttribute()


class ProjectItem(RegistryItem):
    audit_seq = NumberAttribute()
    has_contract = BooleanAttribute(default=False)
    # written once, with the project: the audit log's first entry (AuditEntry JSON, seq 1)
    genesis = UnicodeAttribute(null=True)
    # the creator's membership (gsi2, the "my projects" index) until a membership change moves it
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)


class VersionItem(RegistryItem):
    number = NumberAttribute()
    status = UnicodeAttribute()
    core_digest = UnicodeAttribute()
    tags = MapAttribute[str, Any](default=dict)
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_status = Gsi1()
    by_branch = Gsi2()


class AliasItem(RegistryItem):
    version = NumberAttribute()


class AliasHistoryItem(RegistryItem):
    pass


class AuditItem(RegistryItem):
    seq = NumberAttribute()


class DatasetItem(RegistryItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_number = Gsi1()


class RejectionItem(RegistryItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_time = Gsi1()


class RunItem(RegistryItem):
    status = UnicodeAttribute()


class ClaimItem(RegistryItem):
    version = NumberAttribute()


class MembershipItem(RegistryItem):
    role = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()


@dataclass(frozen=True)
class Bound:
    """The registry's pynamodb models bound to one table and endpoint."""

    table_name: str
    connection: TableConnection
    project: type[ProjectItem]
    version: type[VersionItem]
    alias: type[AliasItem]
    history: type[AliasHistoryItem]
    audit: type[AuditItem]
    dataset: type[DatasetItem]
    rejection: type[RejectionItem]
    run: type[RunItem]
    claim: type[ClaimItem]
    membership: type[MembershipItem]


def _bind_class(cls: type[I], table_name: str, host: str | None, region: str | None) -> type[I]:
    meta = type("Meta", (), {"table_name": table_name, "host": host, "region": region, "max_retry_attempts": 3})
    return type(cls.__name__, (cls,), {"Meta": meta, "__module__": __name__, "__qualname__": cls.__qualname__})


def serialized(cls: type[Model], **values: Any) -> dict[str, dict[str, Any]]:
    """The DynamoDB attribute map of an item of `cls` (keys aside), each value serialised by the
    attribute `cls` declares for it; None values are left out, as pynamodb leaves out null ones.

    What a model instance's save would send, without building the instance: pynamodb's Model
    __init__ and serialize cost about 80 us of CPU per item here, a third of create_project's own
    code (measured with the request stubbed out: 0.26 -> 0.18 ms per call)."""
    declared = cls.get_attributes()
    out: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if value is not None:
            attribute = declared[name]  # a KeyError names an attribute the model does not declare
            out[attribute.attr_name] = {attribute.attr_type: attribute.serialize(value)}
    return out


# botocore rebuilds its User-Agent header from a dozen components twice per request: about 0.3 ms
# of CPU per call here (measured: 1.94 -> 1.64 ms per GetItem). The registry's client sends this
# one, built once (botocore's `Config(user_agent=...)`): the SDK, Python and the caller.
USER_AGENT = f"Botocore/{botocore.__version__} ua/2.1 lang/python#{platform.python_version()} app/lepton-registry"


def _client(connection: TableConnection) -> None:
    """Create the table's botocore client now: with USER_AGENT (the session's default config,
    which botocore merges under pynamodb's own) and sending through KeepAliveTransport.

    It does not validate parameters against the service model (`parameter_validation=False`):
    pynamodb builds every request from the declared models and the domain validates what users
    send before that, and DynamoDB validates every request again (a ValidationException). The
    client-side walk of a PutItem's shape costs 90 us of CPU per call here."""
    base = connection.connection
    base.session.set_default_client_config(Config(user_agent=USER_AGENT, parameter_validation=False))
    KeepAliveTransport.install(base.client)


@lru_cache(maxsize=32)
def bind(table_name: str, host: str | None = None, region: str | None = None) -> Bound:
    """The models bound to `table_name` at `host` (None: the AWS endpoint of `region`)."""
    version = _bind_class(VersionItem, table_name, host, region)
    # the version model declares both indexes, so its connection knows the whole table schema
    connection = version._get_connection()
    _client(connection)
    classes: dict[str, type[RegistryItem]] = {"version": version}
    for key, cls in {
        "project": ProjectItem,
        "alias": AliasItem,
        "history": AliasHistoryItem,
        "audit": AuditItem,
        "dataset": DatasetItem,
        "rejection": RejectionItem,
        "run": RunItem,
        "claim": ClaimItem,
        "membership": MembershipItem,
    }.items():
        bound = _bind_class(cls, table_name, host, region)
        bound._connection = connection  # one botocore client for the whole table
        classes[key] = bound
    return Bound(table_name=table_name, connection=connection, **classes)  # type: ignore[arg-type]


# CloudFormation properties of the table (stacks/ declares the same; tests create it from this)
TABLE_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TABLE_ATTRIBUTES = [
    {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
]
TABLE_GSIS = [
    {
        "IndexName": f"gsi{i}",
        "KeySchema": [
            {"AttributeName": f"gsi{i}pk", "KeyType": "HASH"},
            {"AttributeName": f"gsi{i}sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    for i in (1, 2)
]


def create_table(client: Any, table_name: str) -> None:
    """Create the registry table with a boto3 DynamoDB client (tests, local runtime, bench)."""
    client.create_table(
        TableName=table_name,
        KeySchema=TABLE_KEY_SCHEMA,
        AttributeDefinitions=TABLE_ATTRIBUTES,
        GlobalSecondaryIndexes=TABLE_GSIS,
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})


# ---------------------------------------------------------------------------------- repository


# pynamodb asks for ReturnConsumedCapacity=TOTAL on every call unless told otherwise; nothing here
# reads it, and computing it costs the store time (DynamoDB Local: +14% on a 3-item transaction)
NO_CAPACITY = "NONE"
BODY = ["body"]


def _is_padded(value: str) -> bool:
    return len(value) == PAD and value.isdigit()


def _prefixed(prefix: str) -> Callable[[str], bool]:
    return lambda value: value.startswith(prefix)


def _equals(expected: str) -> Callable[[str], bool]:
    return lambda value: value == expected


def _raw(key: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in key.items()}


def _flat(key: dict[str, dict[str, str]] | None) -> dict[str, str] | None:
    return {k: v["S"] for k, v in key.items()} if key else None


class DynamoRegistryRepository:
    """`RegistryRepository` on DynamoDB. Construct with the table name (and the endpoint of the
    local runtime, if any); the models are bound at construction, not import."""

    def __init__(self, table_name: str, *, host: str | None = None, region: str | None = None) -> None:
        self.t = bind(table_name, host, region)
        self._no_such_project = self.t.project.pk.does_not_exist()  # built once: it is the same every time

    # ------------------------------------------------------------------------------- reads

    def _body(self, pk: str, sk: str) -> str | None:
        """The `body` of one item (a strongly consistent GetItem), or None."""
        data = self.t.connection.get_item(pk, sk, consistent_read=True, attributes_to_get=BODY)
        item = data.get("Item")
        return str(item["body"]["S"]) if item else None

    def _get(self, model: type[M], pk: str, sk: str) -> M | None:
        body = self._body(pk, sk)
        return model.model_validate_json(body) if body is not None else None

    def _query_items(
        self,
        hash_key: str,
        *,
        limit: int | None,
        start: dict[str, str] | None = None,
        index: str | None = None,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        newest_first: bool = False,
        attributes: Sequence[str] = BODY,
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One Query page: the items (only `attributes` are read) and the key to continue from.
        Reads of the table are strongly consistent; an index's cannot be."""
        data = self.t.connection.query(
            hash_key,
            range_key_condition=range_key_condition,
            filter_condition=filter_condition,
            attributes_to_get=list(attributes),
            consistent_read=index is None,
            exclusive_start_key=_raw(start) if start else None,
            index_name=index,
            limit=limit,
            return_consumed_capacity=NO_CAPACITY,
            scan_index_forward=not newest_first,
        )
        return data.get("Items", []), _flat(data.get("LastEvaluatedKey"))

    def _query(self, hash_key: str, **kwargs: Any) -> tuple[list[str], dict[str, str] | None]:
        """`_query_items` reading only the items' `body`: the bodies and the key to continue from."""
        items, last = self._query_items(hash_key, **kwargs)
        return [raw["body"]["S"] for raw in items], last

    def _batch_bodies(self, keys: list[dict[str, str]]) -> dict[str, str]:
        """sk -> body of the items with these keys (one BatchGetItem, more only for the
        unprocessed keys the store hands back)."""
        bodies: dict[str, str] = {}
        pending: list[Any] = keys
        while pending:
            data = self.t.connection.batch_get_item(
                pending, consistent_read=True, attributes_to_get=["sk", "body"], return_consumed_capacity=NO_CAPACITY
            )
            for raw in data.get("Responses", {}).get(self.t.table_name, []):
                bodies[raw["sk"]["S"]] = raw["body"]["S"]
            unprocessed = data.get("UnprocessedKeys", {}).get(self.t.table_name, {}).get("Keys", [])
            pending = [{"pk": k["pk"]["S"], "sk": k["sk"]["S"]} for k in unprocessed]
        return bodies

    def _page_items(
        self,
        pk: str,
        *,
        limit: int,
        cursor: str | None,
        expect: dict[str, Callable[[str], bool]],
        sk_prefix: str | None = None,
        index: str | None = None,
        filter_condition: Condition | None = None,
        newest_first: bool = False,
        range_key_condition: Condition | None = None,
        attributes: Sequence[str] = BODY,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One Query: at most `limit` items evaluated (only `attributes` read), and the cursor of the
        next page."""
        start = cursors.decode(cursor, expect=expect)
        if range_key_condition is None and sk_prefix is not None:
            range_key_condition = RegistryItem.sk.startswith(sk_prefix)
        items, last = self._query_items(
            pk,
            limit=limit,
            start=start,
            index=index,
            range_key_condition=range_key_condition,
            filter_condition=filter_condition,
            newest_first=newest_first,
            attributes=attributes,
        )
        return items, cursors.encode(last)

    def _page(self, pk: str, **kwargs: Any) -> tuple[list[str], str | None]:
        """`_page_items` reading only the items' `body`: the bodies and the next page's cursor."""
        items, cursor = self._page_items(pk, **kwargs)
        return [raw["body"]["S"] for raw in items], cursor

    def get_project(self, name: str) -> Project | None:
        return self._get(Project, project_pk(name), "PROJECT")

    def read(
        self,
        project: str,
        *,
        versions: Sequence[int] = (),
        aliases: Sequence[str] = (),
        datasets: Sequence[str] = (),
        runs: Sequence[str] = (),
    ) -> Snapshot:
        pk = project_pk(project)
        wanted = {"PROJECT"}
        wanted |= {f"VERSION#{num(n)}" for n in versions}
        wanted |= {f"ALIAS#{a}" for a in aliases}
        wanted |= {f"DATASET#{d}" for d in datasets}
        wanted |= {f"RUN#{r}" for r in runs}
        bodies = self._batch_bodies([{"pk": pk, "sk": sk} for sk in sorted(wanted)])
        snapshot = Snapshot(project=Project.model_validate_json(bodies["PROJECT"]) if "PROJECT" in bodies else None)
        for sk, body in bodies.items():
            kind, _, rest = sk.partition("#")
            if kind == "VERSION":
                snapshot.versions[int(rest)] = ModelVersion.model_validate_json(body)
            elif kind == "ALIAS":
                snapshot.aliases[rest] = Alias.model_validate_json(body)
            elif kind == "DATASET":
                snapshot.datasets[rest] = DatasetVersion.model_validate_json(body)
            elif kind == "RUN":
                snapshot.runs[rest] = Run.model_validate_json(body)
        return snapshot

    def projects_of(self, principal: str, limit: int, cursor: str | None) -> Page[Membership]:
        """One Query of gsi2 (eventually consistent on AWS, as every index): membership items and
        the project items whose creator's membership still lives on them, by project name."""
        hash_key = member_key(principal)
        items, nxt = self._page_items(
            hash_key,
            limit=limit,
            cursor=cursor,
            expect={
                "gsi2pk": _equals(hash_key),
                "gsi2sk": _prefixed("PROJECT#"),
                "pk": lambda v: v.startswith(("PRINCIPAL#", "PROJECT#")),
                "sk": _prefixed("PROJECT"),
            },
            index="gsi2",
            attributes=["gsi2sk", "role"],
        )
        members = [
            Membership(principal=principal, project=raw["gsi2sk"]["S"].removeprefix("PROJECT#"), role=raw["role"]["S"])
            for raw in items
        ]
        return Page(members, nxt)

    def get_version(self, project: str, number: int) -> ModelVersion | None:
        return self._get(ModelVersion, project_pk(project), f"VERSION#{num(number)}")

    def get_versions(self, project: str, numbers: Sequence[int]) -> dict[int, ModelVersion]:
        pk = project_pk(project)
        wanted = sorted({f"VERSION#{num(n)}" for n in numbers})
        found: dict[int, ModelVersion] = {}
        for chunk in range(0, len(wanted), 100):  # BatchGetItem takes at most 100 keys
            bodies = self._batch_bodies([{"pk": pk, "sk": sk} for sk in wanted[chunk : chunk + 100]])
            for body in bodies.values():
                version = ModelVersion.model_validate_json(body)
                found[version.number] = version
        return found

    def query_versions(self, project: str, query: VersionQuery, limit: int, cursor: str | None) -> Page[ModelVersion]:
        pk = project_pk(project)
        cls = self.t.version
        filters: list[Condition] = []
        if query.tag is not None:
            tag = Path(["tags", query.tag])
            filters.append(tag.exists() if query.tag_value is None else tag == query.tag_value)
        if query.status is not None and query.branch is not None:
            filters.append(cls.status == query.status.value)
        expect: dict[str, Callable[[str], bool]] = {"pk": _equals(pk), "sk": _prefixed("VERSION#")}
        index: str | None = None
        if query.branch is not None:
            index, hash_key = "gsi2", f"{project}#BRANCH#{query.branch}"
            expect |= {"gsi2pk": _equals(hash_key), "gsi2sk": _is_padded}
        elif query.status is not None:
            index, hash_key = "gsi1", f"{project}#STATUS#{query.status.value}"
            expect |= {"gsi1pk": _equals(hash_key), "gsi1sk": _is_padded}
        else:
            hash_key = pk
        condition = None
        for f in filters:
            condition = f if condition is None else condition & f
        items, nxt = self._page(
            hash_key,
            limit=limit,
            cursor=cursor,
            expect=expect,
            sk_prefix="VERSION#" if index is None else None,
            index=index,
            filter_condition=condition,
            newest_first=query.newest_first,
        )
        return Page([ModelVersion.model_validate_json(b) for b in items], nxt)

    def get_alias(self, project: str, name: str) -> Alias | None:
        return self._get(Alias, project_pk(project), f"ALIAS#{name}")

    def list_aliases(self, project: str) -> list[Alias]:
        aliases: list[Alias] = []
        start: dict[str, str] | None = None
        while True:
            bodies, start = self._query(
                project_pk(project), limit=None, start=start, range_key_condition=RegistryItem.sk.startswith("ALIAS#")
            )
            aliases += [Alias.model_validate_json(b) for b in bodies]
            if start is None:
                return aliases

    def alias_history(
        self, project: str, alias: str, *, at: datetime | None, limit: int, cursor: str | None
    ) -> Page[AliasHistoryEntry]:
        pk, prefix = project_pk(project), f"AHIST#{alias}#"
        condition = None
        if at is not None:
            # every key of a move at or before `at` sorts below this bound
            condition = RegistryItem.sk.between(prefix, f"{prefix}{_iso(at)}#~")
        items, nxt = self._page(
            pk,
            limit=limit,
            cursor=cursor,
            expect={"pk": _equals(pk), "sk": _prefixed(prefix)},
            sk_prefix=prefix,
            range_key_condition=condition,
            newest_first=True,
        )
        return Page([AliasHistoryEntry.model_validate_json(b) for b in items], nxt)

    def get_claim(self, project: str, training_job: str) -> JobClaim | None:
        body = self._body(project_pk(project), f"JOB#{training_job}")
        if body is None:
            return None
        return JobClaim(project=project, training_job=training_job, version=int(json.loads(body)["version"]))

    def get_dataset(self, project: str, dataset_id: str) -> DatasetVersion | None:
        return self._get(DatasetVersion, project_pk(project), f"DATASET#{dataset_id}")

    def list_datasets(self, project: str, limit: int, cursor: str | None) -> Page[DatasetVersion]:
        hash_key = f"{project}#DATASETS"
        pk = project_pk(project)
        items, nxt = self._page(
            hash_key,
            limit=limit,
            cursor=cursor,
            expect={"pk": _equals(pk), "sk": _prefixed("DATASET#"), "gsi1pk": _equals(hash_key), "gsi1sk": _is_padded},
            index="gsi1",
            newest_first=True,
        )
        return Page([DatasetVersion.model_validate_json(b) for b in items], nxt)

    def put_rejection(self, rejection: DatasetRejection) -> DatasetRejection:
        cls = self.t.rejection
        item = cls(
            project_pk(rejection.project),
            f"REJECTION#{rejection.rejection_id}",
            kind="rejection",
            body=rejection.model_dump_json(),
            gsi1pk=f"{rejection.project}#REJECTIONS",
            gsi1sk=f"{_iso(rejection.created_at)}#{rejection.rejection_id}",
        )
        try:
            item.save(condition=cls.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            stored = self._get(DatasetRejection, project_pk(rejection.project), f"REJECTION#{rejection.rejection_id}")
            if stored is not None:
                return stored
            raise
        return rejection

    def list_rejections(self, project: str, limit: int, cursor: str | None) -> Page[DatasetRejection]:
        hash_key = f"{project}#REJECTIONS"
        pk = project_pk(project)
        items, nxt = self._page(
            hash_key,
            limit=limit,
            cursor=cursor,
            expect={
                "pk": _equals(pk),
                "sk": _prefixed("REJECTION#"),
                "gsi1pk": _equals(hash_key),
                "gsi1sk": lambda v: "#" in v,
            },
            index="gsi1",
            newest_first=True,
        )
        return Page([DatasetRejection.model_validate_json(b) for b in items], nxt)

    def get_run(self, project: str, run_id: str) -> Run | None:
        return self._get(Run, project_pk(project), f"RUN#{run_id}")

    def list_runs(self, project: str, limit: int, cursor: str | None, status: RunStatus | None = None) -> Page[Run]:
        pk = project_pk(project)
        items, nxt = self._page(
            pk,
            limit=limit,
            cursor=cursor,
            expect={"pk": _equals(pk), "sk": _prefixed("RUN#")},
            sk_prefix="RUN#",
            newest_first=True,
            filter_condition=None if status is None else self.t.run.status == status.value,
        )
        return Page([Run.model_validate_json(b) for b in items], nxt)

    def _genesis(self, project: str) -> tuple[AuditEntry | None, int]:
        """The audit log's first entry, kept on the project item, and the log's length (audit_seq)."""
        data = self.t.connection.get_item(
            project_pk(project), "PROJECT", consistent_read=True, attributes_to_get=["genesis", "audit_seq"]
        )
        item = data.get("Item") or {}
        genesis = AuditEntry.model_validate_json(item["genesis"]["S"]) if "genesis" in item else None
        return genesis, int(item["audit_seq"]["N"]) if "audit_seq" in item else 0

    def _audit_after(self, project: str, seq: int, limit: int) -> Page[AuditEntry]:
        """The entries after `seq`, oldest first (entry items: seq 2 on)."""
        bodies, last = self._query(
            project_pk(project),
            limit=limit,
            range_key_condition=RegistryItem.sk.between(f"AUDIT#{num(seq + 1)}", f"AUDIT#{'9' * PAD}"),
        )
        return Page([AuditEntry.model_validate_json(b) for b in bodies], cursors.encode(last))

    def audit_entries(self, project: str, *, after_seq: int, limit: int) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        if after_seq < 1:
            genesis, _ = self._genesis(project)
            if genesis is not None:
                entries, after_seq, limit = [genesis], 1, limit - 1
        if limit > 0:
            entries += self._audit_after(project, after_seq, limit).items
        return entries

    def audit_page(self, project: str, limit: int, cursor: str | None, newest_first: bool) -> Page[AuditEntry]:
        pk = project_pk(project)
        expect = {"pk": _equals(pk), "sk": _prefixed("AUDIT#")}
        if newest_first:
            bodies, nxt = self._page(
                pk, limit=limit, cursor=cursor, expect=expect, sk_prefix="AUDIT#", newest_first=True
            )
            entries = [AuditEntry.model_validate_json(b) for b in bodies]
            if nxt is None and (not entries or entries[-1].seq > 1):  # the oldest end: the genesis entry comes last
                if len(entries) < limit:
                    genesis, _ = self._genesis(project)
                    entries += [genesis] if genesis is not None else []
                else:  # a full page (a store may leave out the key when nothing follows): one more page
                    nxt = cursors.encode({"pk": pk, "sk": f"AUDIT#{num(entries[-1].seq)}"})
            return Page(entries, nxt)
        start = cursors.decode(cursor, expect=expect)
        after_genesis = f"AUDIT#{num(1)}"
        if start is None:
            genesis, length = self._genesis(project)
            if genesis is not None:
                if limit == 1:
                    more = cursors.encode({"pk": pk, "sk": after_genesis}) if length > 1 else None
                    return Page([genesis], more)
                rest = self._audit_after(project, 1, limit - 1)
                return Page([genesis, *rest.items], rest.cursor)
        elif start["sk"] == after_genesis:  # the page after the genesis entry
            return self._audit_after(project, 1, limit)
        bodies, nxt = self._page(pk, limit=limit, cursor=cursor, expect=expect, sk_prefix="AUDIT#")
        return Page([AuditEntry.model_validate_json(b) for b in bodies], nxt)

    # ------------------------------------------------------------------------------ commit

    def commit(self, change: Change) -> None:
        if change.project.before is None:
            self._create(change)
            return
        names: list[str] = []
        try:
            with TransactWrite(connection=self.t.connection.connection, return_consumed_capacity=NO_CAPACITY) as tx:
                names = self._stage(tx, change)
        except TransactWriteError as exc:
            if exc.cause_response_code != "TransactionCanceledException":
                raise
            codes = [r.code if r else None for r in exc.cancellation_reasons]
            unexpected = {c for c in codes if c not in (None, "None", "ConditionalCheckFailed", "TransactionConflict")}
            if unexpected:
                raise
            failed = [n for n, c in zip(names, codes, strict=False) if c == "ConditionalCheckFailed"]
            current = None
            for name, reason in zip(names, exc.cancellation_reasons, strict=False):
                if name == "project" and reason is not None and reason.raw_item:
                    current = Project.model_validate_json(reason.raw_item["body"]["S"])
            raise CommitConflict(failed, project=current) from exc

    def _stage(self, tx: TransactWrite, change: Change) -> list[str]:
        """Add the Change's writes to `tx`; return their names in the order pynamodb sends them
        (condition checks, deletes, puts, updates), to read the cancellation reasons by."""
        t = self.t
        deletes: list[str] = []
        puts: list[str] = []
        updates: list[str] = []
        project = change.project.after
        pk = project_pk(project.name)

        def put(name: str, item: RegistryItem, condition: Condition | None) -> None:
            tx.save(item, condition=condition)
            puts.append(name)

        before = change.project.before
        if before is None:
            raise ValueError("a new project is created alone (see _create)")
        cls_p = t.project
        project_actions: list[Any] = [
            cls_p.body.set(project.model_dump_json()),
            cls_p.audit_seq.set(project.audit_seq),
            cls_p.has_contract.set(project.contract is not None),
        ]
        creator = normalise_principal(project.created_by)
        if any(m.principal == creator for m in [*change.membership_puts, *change.membership_deletes]):
            # the creator's membership moves from the project item to a membership item
            project_actions += [cls_p.gsi2pk.remove(), cls_p.gsi2sk.remove(), cls_p.role.remove()]
        project_condition = cls_p.audit_seq == before.audit_seq
        if change.require_no_contract:
            project_condition &= cls_p.has_contract == False  # noqa: E712 (a DynamoDB condition)
        # on a conflict the store returns the project as it is now: the retry needs no extra read
        tx.update(cls_p(pk, "PROJECT"), actions=project_actions, condition=project_condition, return_values="ALL_OLD")
        updates.append("project")

        if change.audit is not None:
            entry = change.audit
            audit_item = t.audit(
                pk, f"AUDIT#{num(entry.seq)}", kind="audit", body=entry.model_dump_json(), seq=entry.seq
            )
            put(f"audit:{entry.seq}", audit_item, t.audit.pk.does_not_exist())

        for version in change.version_puts:
            put(f"version:{version.number}", self._version_item(version), t.version.pk.does_not_exist())
        for update in change.version_updates:
            old, new = update.before, update.after
            if old is None:
                raise ValueError("a version update needs the version it replaces")
            if new.core_digest != old.core_digest or new.core.digest() != old.core_digest:
                raise IntegrityError(f"version {old.number}: its core is immutable", version=old.number)
            version_item = self._version_item(new)
            cls = t.version
            tx.update(
                version_item,
                actions=[
                    cls.body.set(version_item.body),
                    cls.status.set(version_item.status),
                    cls.tags.set(version_item.tags),
                    cls.gsi1pk.set(version_item.gsi1pk),
                ],
                condition=(cls.status == old.status.value) & (cls.core_digest == old.core_digest),
            )
            updates.append(f"version:{old.number}")

        for alias_update in change.alias_puts:
            alias = alias_update.after
            alias_item = t.alias(
                pk, f"ALIAS#{alias.name}", kind="alias", body=alias.model_dump_json(), version=alias.version
            )
            prior = alias_update.before
            condition = t.alias.pk.does_not_exist() if prior is None else t.alias.version == prior.version
            put(f"alias:{alias.name}", alias_item, condition)
        for alias in change.alias_deletes:
            tx.delete(t.alias(pk, f"ALIAS#{alias.name}"), condition=t.alias.version == alias.version)
            deletes.append(f"alias:{alias.name}")
        for entry_h in change.history:
            key = f"AHIST#{entry_h.alias}#{_iso(entry_h.at)}#{num(entry_h.audit_seq)}"
            history_item = t.history(pk, key, kind="alias_history", body=entry_h.model_dump_json())
            put(f"history:{entry_h.alias}", history_item, t.history.pk.does_not_exist())
        for dataset in change.dataset_puts:
            dataset_item = t.dataset(
                pk,
                f"DATASET#{dataset.dataset_id}",
                kind="dataset",
                body=dataset.model_dump_json(),
                gsi1pk=f"{dataset.project}#DATASETS",
                gsi1sk=num(dataset.number),
            )
            put(f"dataset:{dataset.dataset_id}", dataset_item, t.dataset.pk.does_not_exist())
        for run_update in change.run_puts:
            run = run_update.after
            run_item = t.run(pk, f"RUN#{run.run_id}", kind="run", body=run.model_dump_json(), status=run.status.value)
            prior_run = run_update.before
            condition = t.run.pk.does_not_exist() if prior_run is None else t.run.status == prior_run.status.value
            put(f"run:{run.run_id}", run_item, condition)
        for claim in change.claims:
            claim_item = t.claim(
                pk,
                f"JOB#{claim.training_job}",
                kind="claim",
                body=json.dumps({"training_job": claim.training_job, "version": claim.version}),
                version=claim.version,
            )
            put(f"claim:{claim.training_job}", claim_item, t.claim.pk.does_not_exist())
        for membership in change.membership_puts:
            member_item = t.membership(
                f"PRINCIPAL#{membership.principal}",
                pk,
                kind="membership",
                body=membership.model_dump_json(),
                role=membership.role.value,
                gsi2pk=member_key(membership.principal),
                gsi2sk=pk,
            )
            put(f"membership:{membership.principal}", member_item, None)
        for membership in change.membership_deletes:
            tx.delete(t.membership(f"PRINCIPAL#{membership.principal}", pk))
            deletes.append(f"membership:{membership.principal}")

        return deletes + puts + updates

    def _create(self, change: Change) -> None:
        """A new project: ONE conditional PutItem of the project item, which also holds the audit
        log's first entry and the creator's membership (see the module's docstring)."""
        project, entry = change.project.after, change.audit
        members = change.membership_puts
        others = (
            change.version_puts,
            change.version_updates,
            change.alias_puts,
            change.alias_deletes,
            change.history,
            change.dataset_puts,
            change.run_puts,
            change.claims,
            change.membership_deletes,
        )
        if entry is None or entry.seq != 1 or project.audit_seq != 1 or len(members) != 1 or any(others):
            raise ValueError("a new project is written alone, with its first audit entry and its creator's membership")
        (member,) = members
        pk = project_pk(project.name)
        item = serialized(
            self.t.project,
            kind="project",
            body=project.model_dump_json(),
            audit_seq=project.audit_seq,
            has_contract=project.contract is not None,
            genesis=entry.model_dump_json(),
            gsi2pk=member_key(member.principal),
            gsi2sk=pk,
            role=member.role.value,
        )
        try:
            self.t.connection.put_item(
                pk,
                "PROJECT",
                attributes=item,
                condition=self._no_such_project,
                return_consumed_capacity=NO_CAPACITY,
            )
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            raise CommitConflict(["project"], project=None) from exc

    def _version_item(self, version: ModelVersion) -> VersionItem:
        p, n = version.project, num(version.number)
        return self.t.version(
            project_pk(p),
            f"VERSION#{n}",
            kind="version",
            body=version.model_dump_json(),
            number=version.number,
            status=version.status.value,
            core_digest=version.core_digest,
            tags=dict(version.tags),
            gsi1pk=f"{p}#STATUS#{version.status.value}",
            gsi1sk=n,
            gsi2pk=f"{p}#BRANCH#{version.branch}",
            gsi2sk=n,
        )


def _iso(at: datetime) -> str:
    """Sortable UTC form of an instant (a naive datetime is taken as UTC)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iter_all(pages: Callable[[str | None], Page[Any]]) -> Iterable[Any]:
    """Follow cursors to the end (tools and tests)."""
    cursor: str | None = None
    while True:
        page = pages(cursor)
        yield from page.items
        if page.cursor is None:
            return
        cursor = page.cursor
