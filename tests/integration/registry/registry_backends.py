"""The backends the registry's integration tests run on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_testkit import make_service

from lepton.registry.service import RegistryService

BACKENDS = ["moto", "moto_server", "dynamodb_local"]


@dataclass
class Backend:
    name: str
    host: str | None
    table: str
    client: Any

    def service(self, **kw: Any) -> RegistryService:
        return make_service(self.table, host=self.host, **kw)
