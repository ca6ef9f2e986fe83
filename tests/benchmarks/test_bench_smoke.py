"""The benchmarks must keep running: tiny sizes, correctness only, never speed."""

from __future__ import annotations

import shutil

import pytest

from bench import foundation, renames


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")
def test_foundation_benchmark_converges_at_small_size() -> None:
    result = foundation.run(200, 1)
    assert result["files"] == 200 and result["first"]["median"] > 0


def test_rename_benchmark_finds_the_moves_at_small_size() -> None:
    result = renames.run(2000, 1)
    hashed = next(r for r in result["results"] if r["case"] == "hashed")
    assert hashed["moves"] > 0
