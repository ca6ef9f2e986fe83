"""Generated documents must match the code they were generated from."""

from __future__ import annotations

from pathlib import Path

from reconcilers.core.machine import document

ROOT = Path(__file__).resolve().parents[2]


def test_state_machine_diagram_is_current() -> None:
    committed = (ROOT / "docs" / "state-machine.md").read_text(encoding="utf-8")
    assert committed == document(), "docs/state-machine.md is stale: run `make diagram`"
