"""Checking a model artifact's sha256 in S3 (the registry records it at registration)."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

CHUNK = 1024 * 1024


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"not an s3://bucket/key URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/")


class S3ArtifactStore:
    """`ArtifactStore` on S3: streams the object through sha256 (constant memory)."""

    def __init__(self, client: Any) -> None:
        self._s3 = client

    def sha256(self, uri: str) -> str | None:
        bucket, key = split_s3_uri(uri)
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied"):
                return None
            raise
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def read_json(self, uri: str, max_bytes: int = 4 * 1024 * 1024) -> Any | None:
        bucket, key = split_s3_uri(uri)
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied"):
                return None
            raise
        if response.get("ContentLength", 0) > max_bytes:
            raise ValueError(f"{uri} is larger than {max_bytes} bytes")
        return json.loads(response["Body"].read())
