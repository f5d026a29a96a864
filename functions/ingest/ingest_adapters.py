"""boto3 adapters for the ingest service's ports. Built in wiring.py; tests run them on moto."""

from __future__ import annotations

import base64
import json
from typing import Any, BinaryIO

import pyarrow as pa
from botocore.exceptions import ClientError
from dataprep.ports import ObjectChanged, ObjectGone

_GONE = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"}
_CHANGED = {"PreconditionFailed", "412"}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def open(self, key: str, *, version_id: str | None = None, etag: str | None = None) -> BinaryIO:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            request["VersionId"] = version_id
        elif etag:
            request["IfMatch"] = f'"{etag.strip(chr(34))}"'
        try:
            body: BinaryIO = self._s3.get_object(**request)["Body"]
        except ClientError as error:
            if _code(error) in _CHANGED:
                raise ObjectChanged(key) from error
            if _code(error) in _GONE:
                raise ObjectGone(key) from error
            raise
        return body

    def put(self, key: str, body: bytes | Any, *, content_type: str, sha256: str | None = None) -> None:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        request["Body"] = pa.BufferReader(body) if isinstance(body, pa.Buffer) else body
        if sha256:
            request["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
        self._s3.put_object(**request)

    def get_json(self, key: str) -> Any | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _code(error) in _GONE:
                return None
            raise
        with body:
            return json.loads(body.read())

    def copy(self, source_key: str, dest_key: str, *, version_id: str | None = None) -> None:
        source: dict[str, str] = {"Bucket": self.bucket, "Key": source_key}
        if version_id:
            source["VersionId"] = version_id
        try:
            self._s3.copy_object(CopySource=source, Bucket=self.bucket, Key=dest_key)
        except ClientError as error:
            if _code(error) in _GONE:
                raise ObjectGone(source_key) from error
            raise

    def delete(self, key: str, *, version_id: str | None = None, etag: str | None = None) -> bool:
        if version_id:
            self._s3.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            return True
        if etag:
            try:
                current = self._s3.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
            except ClientError as error:
                if _code(error) in _GONE:
                    return False
                raise
            if current != etag.strip('"'):
                return False  # a newer upload took the key: it is not ours to delete
        self._s3.delete_object(Bucket=self.bucket, Key=key)
        return True
