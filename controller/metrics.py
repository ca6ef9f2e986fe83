"""Prometheus metrics: counted here, exposed over HTTP by the manager's web server.

Names follow controller-runtime and client-go (``controller_runtime_*``,
``workqueue_*``) so the dashboards people already have for Kubernetes
controllers read ours too. Each ``Metrics`` owns its registry: the process uses
the module-level ``METRICS``, and a test builds its own and sees only its own
counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconcilers.core.machine import State

RESULTS = ("success", "error", "requeue")
"""Values of ``controller_runtime_reconcile_total{result}``."""

ACTIONS = ("set", "move", "drop")
"""Values of ``controller_actions_total{action}``."""

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
"""Histogram buckets: a pass or a wait ranges from milliseconds to the 15 min backoff cap."""


class Metrics:
    """Every metric the controller exports, registered on a private registry.

    Counters are created without their ``_total`` suffix: prometheus_client
    appends it, so the exposed names are exactly the documented ones. Known
    label values start at zero, so a series exists before its first event and
    ``rate()`` sees the first increment.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry

        # controller-runtime: one reconcile of one blog
        self.reconcile_total = Counter(
            "controller_runtime_reconcile",
            "Reconciles by result.",
            ["result"],
            registry=r,
        )
        self.reconcile_errors_total = Counter(
            "controller_runtime_reconcile_errors", "Reconciles that ended in an error.", registry=r
        )
        self.reconcile_time_seconds = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Duration of one reconcile.",
            buckets=SECONDS,
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers", "Workers processing a blog now.", registry=r
        )

        # client-go workqueue
        self.workqueue_depth = Gauge("workqueue_depth", "Blogs ready to be handed out.", registry=r)
        self.workqueue_adds_total = Counter(
            "workqueue_adds", "Adds accepted by the work queue.", registry=r
        )
        self.workqueue_retries_total = Counter(
            "workqueue_retries", "Rate-limited re-adds (retries after a failure).", registry=r
        )
        self.workqueue_queue_duration_seconds = Histogram(
            "workqueue_queue_duration_seconds",
            "Time a blog waits in the queue between its add and a worker taking it.",
            buckets=SECONDS,
            registry=r,
        )
        self.workqueue_work_duration_seconds = Histogram(
            "workqueue_work_duration_seconds",
            "Time a worker holds a blog, from taking it to done.",
            buckets=SECONDS,
            registry=r,
        )

        # this controller
        self.leases_acquired_total = Counter(
            "controller_leases_acquired", "Blog leases acquired.", registry=r
        )
        self.lease_lost_total = Counter(
            "controller_lease_lost", "Blog leases lost while holding them.", registry=r
        )
        self.actions_total = Counter(
            "controller_actions",
            "Actions applied to blog folders, by kind.",
            ["action"],
            registry=r,
        )
        self.build_errors_total = Counter(
            "controller_build_errors", "Posts that failed to build.", registry=r
        )
        self.bytes_fetched_total = Counter(
            "controller_bytes_fetched", "Bytes fetched from sources.", registry=r
        )
        self.files = Gauge("controller_files", "Synced files by state.", ["state"], registry=r)

        for result in RESULTS:
            self.reconcile_total.labels(result=result)
        for action in ACTIONS:
            self.actions_total.labels(action=action)
        for state in State:
            self.files.labels(state=state.value)

    def set_file_states(self, counts: Mapping[str, int]) -> None:
        """``controller_files{state}`` from the store's counts (set at scrape time)."""
        for state in State:
            self.files.labels(state=state.value).set(counts.get(state.value, 0))

    def render(self) -> bytes:
        """The registry in the Prometheus text format, as an HTTP endpoint serves it."""
        return generate_latest(self.registry)


METRICS = Metrics()
"""The process's metrics; tests make their own ``Metrics()`` instead."""
