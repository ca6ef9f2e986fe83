"""The work queue: client-go semantics, driven by a fake clock and by real threads."""

from __future__ import annotations

import random
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from controller.metrics import Metrics
from controller.workqueue import WorkQueue, backoff_delay


class FakeClock:
    """A monotonic clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TopOfRange(random.Random):
    """An rng whose jitter always picks the ceiling, so backoff growth is visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


def drain(queue: WorkQueue) -> list[str]:
    """Take every ready key (without finishing them)."""
    keys = []
    while (key := queue.get(timeout=0)) is not None:
        keys.append(key)
    return keys


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> WorkQueue:
    return WorkQueue(clock=clock, rng=random.Random(0))


# -- add, get, done -------------------------------------------------------------


def test_repeated_adds_of_a_waiting_key_collapse_into_one_item(queue: WorkQueue) -> None:
    for _ in range(3):
        queue.add("a")
    queue.add("b")
    queue.add("a")

    assert len(queue) == 2
    assert drain(queue) == ["a", "b"]


def test_a_key_added_while_processing_runs_again_after_done_exactly_once(
    queue: WorkQueue,
) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add("a")
    queue.add("a")

    assert queue.get(timeout=0) is None  # never handed to a second worker
    assert len(queue) == 0
    queue.done("a")
    assert len(queue) == 1
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    assert queue.get(timeout=0) is None


def test_a_key_done_without_a_new_add_is_not_handed_out_again(queue: WorkQueue) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    assert queue.processing() == frozenset({"a"})
    queue.done("a")

    assert queue.processing() == frozenset()
    assert queue.get(timeout=0) is None


def test_done_for_a_key_that_is_not_being_processed_is_an_error(queue: WorkQueue) -> None:
    queue.add("a")
    with pytest.raises(ValueError, match="not being processed"):
        queue.done("a")


def test_get_returns_none_after_its_timeout_when_nothing_is_ready() -> None:
    queue = WorkQueue()
    started = time.monotonic()
    assert queue.get(timeout=0.02) is None
    assert 0.015 <= time.monotonic() - started < 2


# -- delays -----------------------------------------------------------------------


def test_add_after_hands_keys_out_in_due_order_once_the_clock_passes(
    queue: WorkQueue, clock: FakeClock
) -> None:
    queue.add_after("late", 5)
    queue.add_after("early", 2)
    queue.add_after("middle", 3)

    clock.advance(1.9)
    assert queue.get(timeout=0) is None
    assert len(queue) == 0
    clock.advance(0.1)
    assert drain(queue) == ["early"]
    clock.advance(10)
    assert drain(queue) == ["middle", "late"]


def test_an_earlier_add_after_for_the_same_key_wins(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("a", 2)
    queue.add_after("a", 5)  # later: ignored
    clock.advance(2)
    assert drain(queue) == ["a"]
    queue.done("a")

    queue.add_after("b", 5)
    queue.add_after("b", 1)  # earlier: replaces the first
    clock.advance(1)
    assert drain(queue) == ["b"]
    queue.done("b")
    clock.advance(10)
    assert queue.get(timeout=0) is None  # the replaced entry never fires


def test_a_plain_add_makes_a_delayed_key_due_now(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add_after("a", 5)
    queue.add("a")
    assert drain(queue) == ["a"]
    queue.done("a")

    clock.advance(10)
    assert queue.get(timeout=0) is None


def test_add_after_for_a_key_already_due_is_dropped(queue: WorkQueue, clock: FakeClock) -> None:
    queue.add("a")
    queue.add_after("a", 5)
    assert drain(queue) == ["a"]
    queue.done("a")

    clock.advance(10)
    assert queue.get(timeout=0) is None


def test_add_after_without_a_delay_is_a_plain_add(queue: WorkQueue) -> None:
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert drain(queue) == ["a", "b"]


def test_a_delayed_key_falling_due_while_processing_runs_after_done(
    queue: WorkQueue, clock: FakeClock
) -> None:
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add_after("a", 1)
    clock.advance(1)

    assert queue.get(timeout=0) is None
    queue.done("a")
    assert queue.get(timeout=0) == "a"


def test_a_blocked_get_wakes_when_a_delayed_key_falls_due() -> None:
    queue = WorkQueue()
    started = time.monotonic()
    queue.add_after("a", 0.05)

    assert queue.get(timeout=5) == "a"
    assert 0.04 <= time.monotonic() - started < 5


# -- rate limiting ----------------------------------------------------------------


def test_rate_limited_backoff_doubles_and_forget_resets_it(clock: FakeClock) -> None:
    queue = WorkQueue(clock=clock, rng=TopOfRange(), base_delay=1.0, max_delay=900.0)

    def delay_of_next_retry() -> float:
        queue.add_rate_limited("a")
        start = clock.now
        step = 0.25
        while (key := queue.get(timeout=0)) is None:
            clock.advance(step)
        assert key == "a"
        queue.done("a")
        return clock.now - start

    assert [delay_of_next_retry() for _ in range(4)] == [1, 2, 4, 8]
    assert queue.failures("a") == 4
    queue.forget("a")
    assert queue.failures("a") == 0
    assert delay_of_next_retry() == 1


def test_rate_limited_backoff_is_capped_at_max_delay(clock: FakeClock) -> None:
    queue = WorkQueue(clock=clock, rng=TopOfRange(), base_delay=1.0, max_delay=10.0)
    for _ in range(20):
        queue.add_rate_limited("a")
        clock.advance(10)
        assert queue.get(timeout=0) == "a"
        queue.done("a")
    assert queue.failures("a") == 20


def test_failures_are_counted_per_key(queue: WorkQueue) -> None:
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    queue.add_rate_limited("b")
    assert (queue.failures("a"), queue.failures("b"), queue.failures("c")) == (2, 1, 0)


@given(
    failures=st.integers(0, 200),
    base=st.floats(0.001, 100),
    cap=st.floats(0, 10_000),
    seed=st.integers(),
)
def test_backoff_delay_stays_within_zero_and_its_ceiling(
    failures: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(failures, random.Random(seed), base, cap)
    assert 0 <= delay <= min(cap, base * 2**failures)
    assert backoff_delay(failures, random.Random(seed), base, cap) == delay  # pure


def test_backoff_delay_survives_failure_counts_beyond_a_float() -> None:
    assert 0 <= backoff_delay(5000, random.Random(1)) <= 900


# -- shutdown -----------------------------------------------------------------------


def test_shut_down_wakes_getters_blocked_in_other_threads() -> None:
    queue = WorkQueue()
    results: list[str | None] = []
    waiting = threading.Barrier(4)

    def getter() -> None:
        waiting.wait()
        results.append(queue.get())  # no timeout: only shut_down can end it

    threads = [threading.Thread(target=getter) for _ in range(3)]
    for thread in threads:
        thread.start()
    waiting.wait()
    time.sleep(0.02)  # let them reach the condition's wait
    queue.shut_down()
    for thread in threads:
        thread.join(timeout=5)

    assert not any(thread.is_alive() for thread in threads)
    assert results == [None, None, None]
    assert queue.shutting_down


def test_a_shut_down_queue_ignores_adds_and_hands_nothing_out(
    queue: WorkQueue, clock: FakeClock
) -> None:
    queue.add("held")
    queue.add("waiting")
    queue.add_after("delayed", 1)
    assert queue.get(timeout=0) == "held"
    queue.shut_down()
    queue.add("new")
    queue.add_after("new", 1)
    queue.add_rate_limited("new")
    clock.advance(5)

    assert len(queue) == 0
    assert queue.get(timeout=0) is None
    assert queue.failures("new") == 0
    assert queue.processing() == frozenset({"held"})
    queue.done("held")  # a worker still finishes what it held
    assert queue.processing() == frozenset()


def test_a_blocked_get_wakes_when_another_thread_adds() -> None:
    queue = WorkQueue()
    adder = threading.Timer(0.02, queue.add, args=("a",))
    adder.start()
    try:
        assert queue.get(timeout=5) == "a"
    finally:
        adder.join()


# -- metrics --------------------------------------------------------------------------


def test_metrics_count_adds_retries_depth_and_durations(clock: FakeClock) -> None:
    metrics = Metrics()
    queue = WorkQueue(clock=clock, rng=TopOfRange(), metrics=metrics)

    def value(name: str) -> float | None:
        return metrics.registry.get_sample_value(name)

    queue.add("a")
    queue.add("a")  # collapsed: not counted
    queue.add("b")
    assert value("workqueue_adds_total") == 2
    assert value("workqueue_depth") == 2

    clock.advance(3)
    assert queue.get(timeout=0) == "a"
    assert value("workqueue_depth") == 1
    clock.advance(2)
    queue.done("a")
    assert value("workqueue_queue_duration_seconds_count") == 1
    assert value("workqueue_queue_duration_seconds_sum") == 3
    assert value("workqueue_work_duration_seconds_count") == 1
    assert value("workqueue_work_duration_seconds_sum") == 2

    queue.add_rate_limited("c")  # due in 1 s
    assert value("workqueue_retries_total") == 1
    assert value("workqueue_adds_total") == 2  # counted once it falls due
    clock.advance(1)
    assert len(queue) == 2
    assert value("workqueue_adds_total") == 3
    assert value("workqueue_depth") == 2


# -- the state machine ----------------------------------------------------------------

KEYS = st.sampled_from(("a", "b", "c"))


class WorkQueueMachine(RuleBasedStateMachine):
    """Simulated workers (the set of held keys) against a model of what is owed.

    ``owed`` maps each key that was added since it was last handed out to the
    earliest time it may be handed out. A key is eligible when it is owed, due
    and not held; ``get`` must return an eligible key when there is one, and
    only then.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.metrics = Metrics()
        self.queue = WorkQueue(clock=self.clock, rng=random.Random(0), metrics=self.metrics)
        self.held: set[str] = set()
        self.owed: dict[str, float] = {}
        self.shut = False

    def eligible(self) -> set[str]:
        now = self.clock.now
        return {key for key, due in self.owed.items() if due <= now and key not in self.held}

    def owe(self, key: str, due: float) -> None:
        if not self.shut:
            self.owed[key] = min(due, self.owed.get(key, due))

    @rule(key=KEYS)
    def add(self, key: str) -> None:
        self.queue.add(key)
        self.owe(key, self.clock.now)

    @rule(key=KEYS, delay=st.floats(-1, 10))
    def add_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)
        self.owe(key, self.clock.now + delay if delay > 0 else self.clock.now)

    @rule(seconds=st.sampled_from((0.5, 1.0, 3.0)) | st.floats(0, 10))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def get(self) -> None:
        eligible = self.eligible()
        key = self.queue.get(timeout=0)
        if key is None:
            assert not eligible, f"{sorted(eligible)} are due but get returned None"
            return
        assert key not in self.held, f"{key} handed to a second worker"
        assert key in eligible, f"{key} handed out without a due add since its last run"
        del self.owed[key]
        self.held.add(key)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.held)))
        self.queue.done(key)
        self.held.remove(key)

    @rule()
    def shut_down(self) -> None:
        self.queue.shut_down()
        self.shut = True
        self.owed.clear()

    @invariant()
    def workers_hold_exactly_the_processing_keys(self) -> None:
        assert self.queue.processing() == self.held

    @invariant()
    def depth_is_the_number_of_ready_keys(self) -> None:
        assert len(self.queue) == len(self.eligible())
        (gauge,) = self.metrics.workqueue_depth.collect()  # one metric, not the registry
        assert gauge.samples[0].value == len(self.eligible())

    @invariant()
    def shutting_down_is_reported(self) -> None:
        assert self.queue.shutting_down == self.shut

    def teardown(self) -> None:
        """Eventually: finishing all work and passing every due time serves every owed key."""
        for held in sorted(self.held):
            self.queue.done(held)
        self.held.clear()
        if self.owed:
            self.clock.advance(max(self.owed.values()) - self.clock.now + 1)
        while (key := self.queue.get(timeout=0)) is not None:
            assert key in self.owed, f"{key} handed out without an add"
            del self.owed[key]
            self.queue.done(key)
        assert not self.owed, f"{sorted(self.owed)} were added but never handed out"


TestWorkQueueMachine = WorkQueueMachine.TestCase


# -- real threads -----------------------------------------------------------------------


def test_threads_never_overlap_on_a_key_and_every_add_is_processed_after_it() -> None:
    queue = WorkQueue()
    keys = [f"blog-{i}" for i in range(40)]
    lock = threading.Lock()
    tick = 0
    active: set[str] = set()
    overlaps: list[str] = []
    last_add: dict[str, int] = {}
    last_start: dict[str, int] = {}

    def stamp() -> int:
        nonlocal tick
        tick += 1
        return tick

    def worker() -> None:
        while (key := queue.get()) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
                last_start[key] = stamp()
            time.sleep(0)  # yield, so an overlap would have a chance to show
            with lock:
                active.remove(key)
            queue.done(key)

    def producer() -> None:
        rng = random.Random(7)
        for i in range(3000):
            key = rng.choice(keys)
            with lock:
                last_add[key] = stamp()  # the change happens before the add
            queue.add(key)
            time.sleep(0.001 if i % 500 == 0 else 0)  # interleave with the workers

    def all_served() -> bool:
        with lock:
            return all(last_start.get(key, 0) > added for key, added in last_add.items())

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for thread in workers:
        thread.start()
    adder = threading.Thread(target=producer)
    adder.start()
    adder.join(timeout=10)
    deadline = time.monotonic() + 5
    while not all_served() and time.monotonic() < deadline:
        time.sleep(0.001)
    queue.shut_down()
    for thread in workers:
        thread.join(timeout=5)

    assert not adder.is_alive()
    assert not any(thread.is_alive() for thread in workers)
    assert overlaps == []
    assert all_served(), "some key was added and never processed afterwards"
    assert queue.processing() == frozenset()
