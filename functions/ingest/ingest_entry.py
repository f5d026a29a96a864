"""From an S3 notification to the idempotent ingest of each object it announces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.typing import LambdaContext
from dataprep.service import IngestResult, S3ObjectRef

from lepton.observability import logger, metrics

SYSTEM_ACTOR = "system:ingest"

IngestFunction = Callable[..., IngestResult]  # called as ingest(ref=..., actor=...)


class InvalidEvent(ValueError):
    """The event is not an S3 ObjectCreated notification: a wiring error, not a data problem."""


def object_ref(record: S3EventRecord) -> S3ObjectRef:
    """The object a record announces. Keys arrive URL-encoded (a space as '+'), as AWS sends them."""
    if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated"):
        raise InvalidEvent(f"not an S3 ObjectCreated record: {record.get('eventSource')} {record.get('eventName')}")
    s3 = record["s3"]
    obj = s3.get("object") or {}
    if "key" not in obj or "size" not in obj:
        raise InvalidEvent("S3 record without object key or size")
    return S3ObjectRef(
        bucket=s3["bucket"]["name"],
        key=unquote_plus(obj["key"]),
        size=int(obj["size"]),
        etag=(obj.get("eTag") or "").strip('"') or None,
        version_id=obj.get("versionId") or None,
        sequencer=obj.get("sequencer") or None,
    )


def actor_of(record: S3EventRecord) -> str:
    """The principal that uploaded the object (AWS fills userIdentity; some emulators do not)."""
    principal = (record.get("userIdentity") or {}).get("principalId")
    return str(principal) if principal else SYSTEM_ACTOR


def handle(
    event: S3Event,
    ingest: IngestFunction,
    context: LambdaContext | None = None,
    idempotency: IdempotencyConfig | None = None,
) -> dict[str, Any]:
    """Ingest every object of the event. Each is independent and idempotent: all are attempted, and
    if any failed the first error is raised afterwards so that Lambda retries the event (the ones that
    succeeded then answer from the idempotency store)."""
    if context is not None and idempotency is not None:
        idempotency.register_lambda_context(context)  # an in-progress record expires with this invocation
    results: list[dict[str, Any]] = []
    errors: list[Exception] = []
    records = list(event.records)
    refs = [object_ref(record) for record in records]
    for record, ref in zip(records, refs, strict=True):
        try:
            result = ingest(ref=ref, actor=actor_of(record))
        except Exception as error:  # noqa: BLE001 (re-raised below, after the other records)
            logger.exception("ingest failed; the event will be retried", extra={"key": ref.key})
            metrics.add_metric(name="IngestFailures", unit="Count", value=1)
            errors.append(error)
            continue
        results.append(result.model_dump(mode="json"))
    if errors:
        raise errors[0]
    return {"results": results}
