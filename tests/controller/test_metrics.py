"""The metrics: exposed names, isolated registries, series that exist from the start."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from controller.metrics import METRICS, Metrics
from reconcilers.core.machine import State

COUNTERS = {
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "workqueue_adds_total",
    "workqueue_retries_total",
    "controller_leases_acquired_total",
    "controller_lease_lost_total",
    "controller_actions_total",
    "controller_build_errors_total",
    "controller_bytes_fetched_total",
}
GAUGES = {
    "controller_runtime_active_workers",
    "workqueue_depth",
    "controller_files",
}
HISTOGRAMS = {
    "controller_runtime_reconcile_time_seconds",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
}


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def test_rendered_samples_carry_the_documented_names() -> None:
    names = {name for name, _ in _samples(Metrics())}

    assert COUNTERS.issubset(names)
    assert GAUGES.issubset(names)
    parts = ("count", "sum", "bucket")
    assert {f"{name}_{part}" for name in HISTOGRAMS for part in parts}.issubset(names)
    assert not {name for name in names if name.endswith("_total_total")}


def test_each_instance_counts_on_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.reconcile_total.labels(result="success").inc()
    first.bytes_fetched_total.inc(4096)

    assert (
        first.registry.get_sample_value("controller_runtime_reconcile_total", {"result": "success"})
        == 1
    )
    assert first.registry.get_sample_value("controller_bytes_fetched_total") == 4096
    assert (
        second.registry.get_sample_value(
            "controller_runtime_reconcile_total", {"result": "success"}
        )
        == 0
    )
    assert second.registry.get_sample_value("controller_bytes_fetched_total") == 0


def test_known_label_values_are_exposed_at_zero_before_any_event() -> None:
    samples = _samples(Metrics())

    for result in ("success", "error", "requeue"):
        assert samples[("controller_runtime_reconcile_total", (("result", result),))] == 0
    for action in ("set", "move", "drop"):
        assert samples[("controller_actions_total", (("action", action),))] == 0
    for state in State:
        assert samples[("controller_files", (("state", state.value),))] == 0


def test_render_shows_counted_values_in_the_text_format() -> None:
    metrics = Metrics()
    metrics.actions_total.labels(action="move").inc(3)
    metrics.files.labels(state="synced").set(12)
    metrics.reconcile_time_seconds.observe(0.2)

    text = metrics.render()
    assert b'controller_actions_total{action="move"} 3.0' in text
    assert b'controller_files{state="synced"} 12.0' in text
    assert b"controller_runtime_reconcile_time_seconds_count 1.0" in text


def test_the_process_has_one_default_instance() -> None:
    assert isinstance(METRICS, Metrics)
    assert b"workqueue_depth" in METRICS.render()


def test_a_pass_counts_the_bytes_it_installed_and_the_builds_that_failed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from controller.reconcile import Reconciler
    from controller.settings import Settings
    from controller.store import BlogRecord, Store

    src = tmp_path / "src"
    src.mkdir()
    (src / "good.md").write_text("Title: Good\n\nfine\n")
    (src / "bad.md").write_text("foo: bar: baz\nxyz\n")
    (src / "data.bin").write_bytes(b"\x00" * 1000)
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}")
    store = Store(settings.effective_database_url, auto_upgrade=True)
    store.add_blog(
        BlogRecord(
            id="b",
            source_kind="local",
            source_config={"location": str(src)},
            folder=str(tmp_path / "blog"),
        )
    )
    metrics = Metrics()
    reconciler = Reconciler(store, settings, metrics=metrics)
    try:
        reconciler.reconcile("b")
    finally:
        reconciler.close()
        store.close()
    total = sum(p.stat().st_size for p in src.iterdir())
    assert metrics.registry.get_sample_value("controller_bytes_fetched_total") == total
    assert metrics.registry.get_sample_value("controller_build_errors_total") == 1
