"""The retry rules on their own, on a simulated clock: what is waited, when it gives up, what is said."""

from __future__ import annotations

import random

import pytest

from sweepctl.backends.retry import REQUEST_SECONDS, Retrying, Transient


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def retrying(timeout: float, clock: Clock, said: list[str]) -> Retrying:
    return Retrying(timeout=timeout, notify=said.append, clock=clock, sleep=clock.sleep, rng=random.Random(1))


def failing(*failures: Transient, then: str = "ok"):
    queue = list(failures)

    def send(timeout: float) -> str:
        assert 0 < timeout <= REQUEST_SECONDS
        if queue:
            raise queue.pop(0)
        return then

    return send


def give_up(failure: Transient, after: float) -> Exception:
    return RuntimeError(f"{failure.cause} after {after}")


def test_429_waits_what_retry_after_asks_never_less_and_says_so_once() -> None:
    clock, said = Clock(), []
    r = retrying(300, clock, said)
    throttled = [Transient(cause="throttled by the API server", label="429", retry_after=s) for s in (2, 3, 1)]
    assert r.call(failing(*throttled), on_give_up=give_up) == "ok"
    assert clock.slept == [2, 3, 1]
    assert said == ["waiting for the API server (429, retry in 2 s)"]
    assert r.requests == 4 and r.retries == 3


def test_no_answer_backs_off_exponentially_with_jitter_up_to_a_cap() -> None:
    clock, said = Clock(), []
    r = retrying(300, clock, said)
    refused = [Transient(cause="connection refused", label="connection refused") for _ in range(8)]
    r.call(failing(*refused), on_give_up=give_up)
    ceilings = [min(4.0, 0.25 * 2**i) for i in range(8)]
    assert all(c / 2 <= s <= c for s, c in zip(clock.slept, ceilings, strict=True)), clock.slept
    assert len(set(clock.slept)) == len(clock.slept)  # jittered
    assert said == [f"waiting for the API server (connection refused, retry in {clock.slept[0]:.1f} s)"]


def test_it_gives_up_after_the_timeout_without_answers_and_a_success_restarts_the_budget() -> None:
    clock, said = Clock(), []
    r = retrying(10, clock, said)
    endless = [Transient(cause="timed out after 10 s", label="no answer in 10 s") for _ in range(100)]
    with pytest.raises(RuntimeError, match="timed out after 10 s after 10"):
        r.call(failing(*endless), on_give_up=give_up)
    assert clock.now <= 10
    # An outage shorter than the timeout, then answers: a later outage gets the whole timeout again.
    r = retrying(10, clock, said)
    assert r.call(failing(*[Transient(cause="c", label="c", retry_after=4)] * 2), on_give_up=give_up) == "ok"
    assert r.call(failing(*[Transient(cause="c", label="c", retry_after=4)] * 2), on_give_up=give_up) == "ok"
    assert r.left() == 10


def test_a_403_is_retried_only_just_after_the_server_gave_no_answer() -> None:
    clock, said = Clock(), []
    r = retrying(300, clock, said)
    assert not r.just_restarted()
    r.call(failing(Transient(cause="connection refused", label="connection refused")), on_give_up=give_up)
    assert r.just_restarted()
    clock.now += 31
    assert not r.just_restarted()


def test_a_request_failing_while_others_are_answered_still_gives_up_within_the_timeout() -> None:
    """The lease's renewal thread gets answers every 10 s; a read that keeps failing must not retry forever."""
    clock, said = Clock(), []
    r = retrying(30, clock, said)

    def send(timeout: float) -> str:
        r.call(lambda t: "renewed", on_give_up=give_up)  # another thread's request, answered meanwhile
        raise Transient(cause="service unavailable", label="503")

    with pytest.raises(RuntimeError, match="service unavailable after 30"):
        r.call(send, on_give_up=give_up)
    assert clock.now <= 30
