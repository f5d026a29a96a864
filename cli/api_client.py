"""A client of Lepton's REST API: every request SigV4-signed for execute-api, as API Gateway's
AWS_IAM authorisation requires, with the caller's own AWS credentials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body


@dataclass
class LeptonApi:
    base_url: str  # https://<api>.execute-api.<region>.amazonaws.com/v1, or the local front door
    credentials: Credentials
    region: str = "us-east-1"
    timeout: float = 60.0

    @classmethod
    def from_keys(cls, base_url: str, access_key: str, secret_key: str, region: str = "us-east-1") -> LeptonApi:
        return cls(base_url.rstrip("/"), Credentials(access_key, secret_key), region)

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> requests.Response:
        url = self.base_url + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data else {}
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(signed)
        return requests.request(method, url, headers=dict(signed.headers), data=data, timeout=self.timeout)

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """The JSON answer of a successful request; ApiError (status and body) otherwise."""
        response = self.request(method, path, body, params)
        payload = response.json() if response.content else None
        if response.status_code >= 400:
            raise ApiError(response.status_code, payload)
        return payload

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)
