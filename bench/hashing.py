"""Stable short hashes of configurations, for cache keys and rerun checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


def config_hash(obj: Any) -> str:
    """12 hex digits of SHA-256 over the JSON of a dataclass (or plain data), keys sorted."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]
