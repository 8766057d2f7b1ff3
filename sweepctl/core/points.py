"""Points of a search space: when two are one trial's, and the seeded numbers they are drawn from.

Shared by random search (search.py) and TPE (tpe.py), which search imports
only for a spec that needs it; tpe takes these from here, so that neither
module imports the other's importer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sweepctl.core.spec import flag_value

__all__ = ["point_key", "unit"]


def unit(*key: object) -> float:
    """A number in [0, 1) that depends only on `key`: the same on every machine and Python."""
    digest = hashlib.sha256("/".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:7], "big") / 2**56


def point_key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """What makes two points the same trial's: their values, compared as the trainer receives them."""
    return tuple(sorted((k, flag_value(v)) for k, v in params.items()))
