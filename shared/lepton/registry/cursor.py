"""Opaque pagination cursors: base64url of a small JSON document holding the store's
LastEvaluatedKey, plus an HMAC of it. Decoding validates everything a caller could have tampered
with (alphabet, MAC, JSON shape, key names, the partition it belongs to, the key range of the
listing), so that a bad cursor is a 400 naming `cursor`, never a store error.

The MAC key is REGISTRY_CURSOR_KEY (read at call time; set it from a secret to make cursors
unforgeable). Without it a fixed key still detects any edit of a cursor, and the shape checks
still confine a forged one to the listing it claims to continue."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping

from lepton.errors import ValidationFailed

MAX_CURSOR_LENGTH = 2048
_VERSION = 1
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_DEFAULT_KEY = b"lepton-registry-cursor-v1"


def _key() -> bytes:
    configured = os.environ.get("REGISTRY_CURSOR_KEY")
    return configured.encode() if configured else _DEFAULT_KEY


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
