"""The pool's tests share one rule: their workers are theirs to account for."""

from __future__ import annotations

import pytest
from procs import workers


@pytest.fixture
def others() -> set[int]:
    """Workers that were there before the test (the process's shared pool)."""
    return set(workers())
