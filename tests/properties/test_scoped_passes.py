"""A watched pass (only the changed paths) converges exactly like a whole pass.

The daemon hands a pass the paths its watch saw; the pass re-observes only
those (and what lies under them) and plans on their region of the trees. The
property: for a random folder and a random set of changes (every kind the
strategies know: moves, swaps, cycles, folder renames and merges, case
renames, a file becoming a folder), given only the top-most changed paths, as
inotify reports a moved folder by its own name, the scoped pass

* stays scoped (no walk),
* leaves the blog folder equal to the source, and
* leaves the store exactly as a whole pass would: a full validation after it
  finds nothing to do.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import ContentModel, content_models, derived_models
from support import tree

from controller.reconcile import Reconciler
from controller.settings import Settings
from controller.store import BlogRecord, Store
from reconcilers.build.jobs import InlineBuilds
from reconcilers.core.tree import Kind, is_within

IN_CI = os.environ.get("CI", "").lower() == "true"


def _write(root: Path, model: Mapping[str, tuple[Kind, str | None]]) -> None:
    for path in sorted(model):
        kind, content = model[path]
        target = root / path
        if kind is Kind.DIR:
            target.mkdir()
        else:
            target.write_text(content or "")


def _apply(root: Path, before: ContentModel, after: ContentModel) -> set[str]:
    """Change the folder from ``before`` to ``after``, touching only what differs.

    Returns the top-most changed paths: what a watch reports for the change.
    """
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    top = {p for p in changed if not any(is_within(p, q) and p != q for q in changed)}
    for path in sorted(top, reverse=True):
        target = root / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for path in sorted(top):
        if path in after:
            _write(root, {p: after[p] for p in after if is_within(p, path)})
    return top


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="scoped-") as tmp:
        yield Path(tmp)


@st.composite
def changes(draw: st.DrawFn) -> tuple[ContentModel, ContentModel]:
    before = draw(content_models())
    after = draw(derived_models(before, min_ops=1))
    assume(after != before)
    return before, after


@settings(
    max_examples=150 if IN_CI else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=changes())
def test_a_watched_pass_over_the_changed_paths_converges_like_a_whole_pass(
    workdir: Path, case: tuple[ContentModel, ContentModel]
) -> None:
    before, after = case
    run = workdir / f"run-{len(list(workdir.iterdir()))}"
    src, folder = run / "src", run / "blog"
    src.mkdir(parents=True)
    _write(src, before)
    store = Store(f"sqlite:///{run / 'c.db'}", auto_upgrade=True)
    store.add_blog(
        BlogRecord(
            id="b", source_kind="local", source_config={"location": str(src)}, folder=str(folder)
        )
    )
    reconciler = Reconciler(store, Settings(data_dir=run), builds=InlineBuilds())
    try:
        reconciler.reconcile("b")
        assert tree(folder) == tree(src)

        touched = _apply(src, before, after)
        report = reconciler.reconcile("b", paths=touched)

        assert report.scoped, f"the pass walked for {sorted(touched)}"
        assert tree(folder) == tree(src)
        check = reconciler.reconcile("b", full=True)
        assert check.actions == {"set": 0, "move": 0, "drop": 0}, (
            f"a full pass still acted after the watched one: {check.actions}"
        )
    finally:
        reconciler.close()
        store.close()
        shutil.rmtree(run)
