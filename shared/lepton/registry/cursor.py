"""Opaque pagination cursors: base64url of a small JSON document holding the store's
LastEvaluatedKey, plus an HMAC of it. Decoding validates everything a caller could have tampered
with (alphabet, MAC, JSON shape, key names, the partition it belongs to, the key range of the
listing), so that a bad cursor is a 400 naming `cursor`, never a store error.

The MAC key: REGISTRY_CURSOR_KEY when set (read at call time), else the Secrets Manager secret
REGISTRY_CURSOR_SECRET_ARN names (the deployed API: the template generates it; read through
powertools' parameters utility and cached for SECRET_MAX_AGE_S, so a warm function reads it once
per 5 minutes and a cold start only when it first meets a cursor). Rotating that secret invalidates
the cursors issued before (400 `cursor`; a listing restarts from its first page). Without either,
a fixed key still detects any edit of a cursor, and the shape checks still confine a forged one to
the listing it claims to continue, but anyone who reads this code can mint one."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping

from lepton.errors import ConfigurationError, ValidationFailed

MAX_CURSOR_LENGTH = 2048
SECRET_MAX_AGE_S = 300
_VERSION = 1
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_DEFAULT_KEY = b"lepton-registry-cursor-v1"


def _key() -> bytes:
    configured = os.environ.get("REGISTRY_CURSOR_KEY")
    if configured:
        return configured.encode()
    secret = os.environ.get("REGISTRY_CURSOR_SECRET_ARN")
    return _secret_key(secret) if secret else _DEFAULT_KEY


def _secret_key(secret_id: str) -> bytes:
    from aws_lambda_powertools.utilities import parameters  # only a function that pages needs it

    try:
        value = parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_S)
    except parameters.exceptions.GetParameterError as exc:
        raise ConfigurationError(f"the cursor key (secret {secret_id}) cannot be read: {exc}") from exc
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"the cursor key (secret {secret_id}) is not a non-empty string")
    return value.encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _mac(payload: bytes) -> bytes:
    return hmac.new(_key(), payload, hashlib.sha256).digest()[:12]


def encode(key: Mapping[str, str] | None) -> str | None:
    if not key:
        return None
    payload = json.dumps({"v": _VERSION, "k": dict(key)}, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_mac(payload))}"


def _bad(reason: str) -> ValidationFailed:
    return ValidationFailed(f"invalid cursor: {reason}", field="cursor")


def decode(cursor: str | None, *, expect: Mapping[str, Callable[[str], bool]]) -> dict[str, str] | None:
    """The key encoded in `cursor`, or None for no cursor. `expect` maps each key attribute the
    listing uses to a predicate its value must satisfy (e.g. the listing's partition)."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _bad("too long")
    if not _TOKEN.match(cursor):
        raise _bad("not a cursor this API issued")
    body, mac = cursor.split(".")
    try:
        payload, given = _unb64(body), _unb64(mac)
    except (UnicodeError, ValueError, binascii.Error) as exc:
        raise _bad("not a cursor this API issued") from exc
    if not hmac.compare_digest(given, _mac(payload)):
        raise _bad("it was altered or not issued by this API")
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise _bad("not a cursor this API issued") from exc
    if not isinstance(doc, dict) or doc.get("v") != _VERSION or not isinstance(doc.get("k"), dict):
        raise _bad("not a cursor this API issued")
    key = doc["k"]
    if set(key) != set(expect):
        raise _bad("it belongs to another listing")
    for name, ok in expect.items():
        value = key[name]
        if not isinstance(value, str) or not ok(value):
            raise _bad("it belongs to another listing")
    return {str(k): str(v) for k, v in key.items()}
