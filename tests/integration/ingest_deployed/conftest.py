"""Ingest on the local AWS through the deployed template (issue 4, acceptance 1 and 2)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # the helper module, named ingest_deployed_* to stay unique
    sys.path.insert(0, HERE)
