"""S3 event notifications: the record moto builds lacks fields AWS sends.

AWS's record (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)
carries the object's versionId on a versioned bucket, a sequencer, the requester and the
request/response elements; moto sends only key, size and eTag, and encodes the key's slashes.
Handlers use versionId and eTag to make processing idempotent, so the record is completed here."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from moto.s3 import notifications

_original = notifications._get_s3_event


def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, list[dict[str, Any]]]:
    event = _original(event_name, bucket, key, notification_id)
    for record in event["Records"]:
        obj = record["s3"]["object"]
        obj["key"] = quote_plus(key.name, safe="/")  # AWS form-encodes the key but keeps its slashes
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null":
            obj["versionId"] = version_id
        obj["sequencer"] = f"{int(key.last_modified.timestamp() * 1_000_000):016X}"
        record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault("responseElements", {"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"})
    return event


def install() -> None:
    notifications._get_s3_event = _get_s3_event
