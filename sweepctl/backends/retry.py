"""Retries that honour the API server, for every request sweepctl sends (one place: `Retrying.call`).

- 429 (throttled, or `storage is (re)initializing` after a restart) waits what
  `Retry-After` asks, never less, on every verb, POST and PATCH included.
- No answer (connection refused or reset, a request timed out) and 500, 503
  and 504 are retried with capped exponential backoff and jitter; so is a 403
  within RESTART_SECONDS of no answer (a restarted server's RBAC warming up).
- All of it under one deadline per command (`--timeout`): the command gives
  up once the API server has not answered (or only throttled) for that long.
  Each request has its own timeout (REQUEST_SECONDS), so nothing hangs.
- While it waits it says so on stderr, once per cause:
  `waiting for the API server (429, retry in 2 s)`.

A retried create may have been committed by the attempt whose answer was
lost; its caller resolves that by reading the object back (kubernetes.py).
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sweepctl.core.durations import say_seconds

__all__ = ["Retrying", "Transient", "DEFAULT_TIMEOUT", "CONNECT_SECONDS", "REQUEST_SECONDS", "RETRIED_STATUSES"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 300.0  # --timeout's default: 5 minutes, as Helm's
CONNECT_SECONDS = 5.0  # to connect, within a request
REQUEST_SECONDS = 10.0  # to answer, once sent: an attempt takes at most CONNECT_SECONDS + REQUEST_SECONDS
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
RESTART_SECONDS = 30.0  # after no answer, a 403 may be a restarted server's authorizer warming up
_BACKOFF_FIRST = 0.25
_BACKOFF_CAP = 4.0
_RETRY_AFTER_CAP = 60.0


@dataclass
class Transient(Exception):
    """A request that may succeed if sent again: why (in words, with a short label), and how long to wait."""

    cause: str  # "throttled by the API server", "connection refused", "timed out after 10 s"
    label: str  # for the waiting line: "429", "connection refused", "503"
    retry_after: float | None = None  # what the server asked for (429, 503 with Retry-After)
    final: Exception | None = None  # what to raise when retrying is over


class Retrying:
    """Sends a request again while it fails transiently, for up to `timeout` seconds without an answer.

    The time counts from the first failure that no success followed, whichever
    request it was: a command gives up after `timeout` seconds of an API
    server that does not answer or only throttles, and rides out any outage
    shorter than that, however long it runs. `requests` counts what was sent
    (retries included), for benchmarks and tests.
    """

    def __init__(self, *, timeout: float | None = None, notify: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._failing_since: float | None = None
        self._last_unanswered: float | None = None  # when a request last got no answer at all
        self.notify = notify or (lambda line: print(line, file=sys.stderr, flush=True))
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def left(self) -> float:
        """Seconds left before giving up: all of --timeout while the API server answers (0: no limit)."""
        if self.timeout <= 0:
            return float("inf")
        since = self._failing_since
        return self.timeout if since is None else since + self.timeout - self._clock()

    def request_timeout(self) -> float:
        """The timeout of the next request: REQUEST_SECONDS, or what is left if less."""
        return max(0.5, min(REQUEST_SECONDS, self.left()))

    def call(self, send: Callable[[float], T], *, on_give_up: Callable[[Transient, float], Exception]) -> T:
        """`send(timeout)` until it returns, or raises anything but Transient; then on_give_up's error."""
        attempt, started = 0, self._clock()
        while True:
            with self._lock:
                self.requests += 1
            sent = self._clock()
            try:
                answer = send(self.request_timeout())
            except Transient as failure:
                with self._lock:  # unanswered since this request was sent, or an earlier one
                    if self._failing_since is None or sent < self._failing_since:
                        self._failing_since = sent
                    if failure.retry_after is None and not failure.label.isdigit():
                        self._last_unanswered = self._clock()
                wait = self._wait(failure, attempt)
                attempt += 1
                # The command's deadline, and this call's own: another thread's answered
                # request (the lease's renewal) restarts the former, never the latter.
                if wait > self.left() or 0 < self.timeout < self._clock() - started + wait:
                    raise on_give_up(failure, self.timeout) from None
                self._say(failure, wait)
                with self._lock:
                    self.retries += 1
                self._sleep(wait)
                continue
            self._failing_since = None  # it answers: the next outage gets the whole --timeout again
            return answer

    def just_restarted(self, within: float = RESTART_SECONDS) -> bool:
        """Whether the API server gave no answer at all a moment ago (it went away, and may be starting again).

        A kube-apiserver that has just started answers 403 until its authorizer
        has read the RBAC rules; such a 403 is worth sending again.
        """
        last = self._last_unanswered
        return last is not None and self._clock() - last < within

    def _wait(self, failure: Transient, attempt: int) -> float:
        if failure.retry_after is not None:
            return min(max(failure.retry_after, 0.0), _RETRY_AFTER_CAP)  # never less than asked
        ceiling = min(_BACKOFF_CAP, _BACKOFF_FIRST * 2**attempt)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)  # jittered, so many requests do not come back at once

    def _say(self, failure: Transient, wait: float) -> None:
        with self._lock:
            if failure.label in self._said:
                return
            self._said.add(failure.label)
        self.notify(f"waiting for the API server ({failure.label}, retry in {say_seconds(wait)})")
