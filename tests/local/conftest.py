"""Fixtures of the local backend's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_helpers import Census


@pytest.fixture
def census(tmp_path: Path) -> Iterator[Census]:
    """Trainers of this test, sampled while it runs."""
    with Census(tmp_path) as c:
        yield c
