"""The supervised pool and ``controller.resilient``, with real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pool_calls as calls
import pytest
from procs import alive, workers, zombies
from support import wait_until

import controller
from controller.pool import Crashed, OutOfMemory, Pool, ResilientError, Timeout


@pytest.fixture
def pool(others: set[int]) -> Iterator[Pool]:
    with Pool(2, timeout=2, memory_limit=512 * 1024**2) as instance:
        yield instance
    assert set(workers()) <= others, "workers left after close()"
    assert zombies() == [], "a worker was not reaped"


def test_results_and_exceptions_come_back_as_they_are(pool: Pool) -> None:
    assert pool.call(calls.double, 21) == 42
    with pytest.raises(ValueError, match="comes back as itself"):
        pool.call(calls.fails)


@pytest.mark.parametrize(
    ("function", "args", "error", "message"),
    [
        (calls.segfault, (), Crashed, "crashed (signal 11)"),
        (calls.sleep, (60,), Timeout, "timed out after 2 s"),
        (calls.leak, (), OutOfMemory, "ran out of memory"),
        (calls.exit_now, (3,), Crashed, "crashed (the worker exited with status 3)"),
    ],
)
def test_a_bad_call_fails_alone_and_its_worker_is_replaced(
    pool: Pool, function: object, args: tuple[object, ...], error: type, message: str
) -> None:
    good = [pool.submit(calls.double, n) for n in range(6)]
    bad = pool.submit(function, *args)
    more = [pool.submit(calls.double, n) for n in range(6, 12)]
    with pytest.raises(error) as info:
        bad.result(30)
    assert str(info.value) == message and isinstance(info.value, ResilientError)
    assert [f.result(30) for f in good + more] == [n * 2 for n in range(12)]
    assert pool.call(calls.double, 5) == 10
    assert zombies() == [], "a dead worker was not reaped"


def test_a_worker_killed_between_calls_is_never_handed_a_call(pool: Pool) -> None:
    first = pool.call(calls.pid)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: first not in workers() or workers()[first] == "Z", 5)
    assert {pool.call(calls.double, n) for n in range(8)} == {n * 2 for n in range(8)}


def test_a_call_lost_with_its_worker_is_reported_not_dropped(pool: Pool, others: set[int]) -> None:
    lost = pool.submit(calls.sleep, 1.5)
    wait_until(lambda: set(workers()) - others, 10, "a worker")
    time.sleep(0.3)
    for child in set(workers()) - others:
        os.kill(child, signal.SIGKILL)
    with pytest.raises(Crashed, match=r"crashed \(signal 9\)"):
        lost.result(10)


def test_functions_that_cannot_be_found_by_name_are_refused_early(pool: Pool) -> None:
    with pytest.raises(TypeError, match="top level of an importable module"):
        pool.submit(lambda: 1)


def test_resilient_runs_a_call_and_wraps_a_function() -> None:
    assert controller.resilient(calls.double, 4) == 8
    assert calls.slow_square(7) == 49
    assert calls.where() != os.getpid()
    with pytest.raises(Timeout, match="timed out after 1 s"):
        calls.slow_square(3, seconds=5)
    with pytest.raises(Crashed):
        controller.resilient(calls.exit_now, 9)


WORKER_HOLDER = """
import os, sys, time
sys.path.insert(0, {tests!r})
from controller.pool import Pool
import pool_calls

pool = Pool(2, timeout=600)
futures = [pool.submit(pool_calls.sleep, 600) for _ in range(2)]
time.sleep(1.5)
print("ready", flush=True)
time.sleep(600)
"""


def test_workers_die_within_two_seconds_of_a_sigkilled_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(WORKER_HOLDER.format(tests=str(Path(__file__).parent)))
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        orphans = set(workers(holder.pid))
        assert len(orphans) == 2
        holder.kill()
        holder.wait(10)
        started = time.monotonic()
        wait_until(lambda: not any(alive(p) for p in orphans), 5, "the workers to die")
        assert time.monotonic() - started < 2.0
    finally:
        if holder.poll() is None:
            holder.kill()


def test_closing_for_exit_kills_a_hung_call_at_once(others: set[int]) -> None:
    pool = Pool(1, timeout=600)
    hung = pool.submit(calls.sleep, 600)
    wait_until(lambda: set(workers()) - others, 10, "the worker to start")
    time.sleep(0.3)
    started = time.monotonic()
    pool.close(kill=True)
    assert time.monotonic() - started < 5
    with pytest.raises(Crashed, match="signal 9"):
        hung.result(1)
    assert set(workers()) <= others and zombies() == []


def test_a_warmed_pool_starts_every_worker_before_its_first_call(others: set[int]) -> None:
    with Pool(2) as pool:
        assert set(workers()) <= others, "a pool nobody used should start no worker"
        pool.warm()
        wait_until(lambda: len(set(workers()) - others) == 2, 20, "both workers to start")
        started = set(workers()) - others
        assert pool.call(calls.double, 21) == 42
        assert set(workers()) - others == started, "the call should use a warmed worker"
    assert set(workers()) <= others and zombies() == []


def test_a_calls_timeout_starts_once_its_worker_is_up(others: set[int]) -> None:
    with Pool(1, timeout=0.05) as pool:
        start = time.perf_counter()
        assert pool.call(calls.double, 21) == 42, "a fresh worker's start is not the call's"
        assert time.perf_counter() - start > 0.05, "the worker started too fast to show it"
        with pytest.raises(Timeout, match=r"timed out after 0\.05 s"):
            pool.call(calls.sleep, 1)
        assert pool.call(calls.double, 2) == 4, "the replacement starts untimed too"
    assert set(workers()) <= others and zombies() == []
