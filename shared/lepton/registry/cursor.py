"""Opaque pagination cursors: base64url of a small JSON document holding the store's
LastEvaluatedKey. Decoding validates everything a caller could have tampered with (encoding,
JSON shape, key names, the partition it belongs to, the key range of the listing), so that a bad
cursor is a 400 naming `cursor`, never a store error."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping

from lepton.errors import ValidationFailed

MAX_CURSOR_LENGTH = 2048
_VERSION = 1


def encode(key: Mapping[str, str] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps({"v": _VERSION, "k": dict(key)}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad(reason: str) -> ValidationFailed:
    return ValidationFailed(f"invalid cursor: {reason}", field="cursor")


def decode(cursor: str | None, *, expect: Mapping[str, Callable[[str], bool]]) -> dict[str, str] | None:
    """The key encoded in `cursor`, or None for no cursor. `expect` maps each key attribute the
    listing uses to a predicate its value must satisfy (e.g. the listing's partition)."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise _bad("too long")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (UnicodeError, ValueError, binascii.Error) as exc:
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
