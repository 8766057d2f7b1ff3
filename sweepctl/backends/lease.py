"""The Kubernetes sweep lock: a coordination.k8s.io Lease named after the sweep.

The Lease `<sweep>-sweepctl-lock` (labelled as the sweep's) names its holder
in `spec.holderIdentity` (the lock id) and the annotation
`sweepctl.dev/lock-info` (user, host, pid, command, since). Unlike Terraform's
lock, it expires: the holder renews it every RENEW_SECONDS, and a Lease not
renewed for LEASE_SECONDS may be taken by the next command. So a holder killed
outright (kill -9, a lost machine) blocks others for at most LEASE_SECONDS
after its last renewal; a command stopped by Ctrl-C or SIGTERM deletes its
Lease on the way out.

Every write carries what it read (a create, or an update with the
resourceVersion read), so of two commands racing for the lock exactly one
wins; the loser reads the Lease again and sees it held, never a raw 409.

No two machines' clocks are compared (client-go's leader election avoids
it too). A taker judges "not renewed for LEASE_SECONDS" on the API server's
clock alone: the time the server stamped on the Lease's last change
(managedFields) against the `Date` of its own answer; without those, on its
own monotonic clock, from when it first saw the Lease unchanged. The holder
judges on its own monotonic clock that its lock still holds: a write is sent
only within WRITE_SECONDS of the start of its last successful renewal, so
even a write that takes its whole connect and request timeouts is answered
before anyone may take the lock. (A write the server commits after the
client gave up on it is beyond any client's bound: Kubernetes has no fencing
token.) Past that, writes wait for the next renewal; a renewal that finds the
Lease taken (or broken with `unlock`) stops every further write with LockLost. An outage shorter than --timeout
keeps the lock when no one took it meanwhile: the renewal that follows it
carries the resourceVersion read before it, so it succeeds only if nobody
wrote the Lease in between.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time
from typing import Any

from sweepctl.backends.kubernetes import ApiError, Cluster, set_write_guard
from sweepctl.backends.locking import Holder, wait_for
from sweepctl.backends.retry import CONNECT_SECONDS, REQUEST_SECONDS
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.durations import say_seconds
from sweepctl.core.manifests import MANAGED_BY, SWEEP

__all__ = ["SweepLease", "LockLost", "LEASE_SECONDS", "RENEW_SECONDS", "lease_name", "server_age"]

LEASE_SECONDS = 30
RENEW_SECONDS = 7  # from the start of one renewal to the next
# How long after the start of its last successful renewal the holder still sends writes: an
# attempt that takes all of its connect and request timeouts is still over before the Lease can
# expire (a second to spare for the server's whole-second stamps).
WRITE_SECONDS = LEASE_SECONDS - CONNECT_SECONDS - REQUEST_SECONDS - 1
INFO = "sweepctl.dev/lock-info"
_ROLE_HINT = ("grant get, create, update and delete on leases (apiGroup coordination.k8s.io) in the namespace, "
              "as the README's Role does (see 'Permissions')")


def lease_name(sweep: str) -> str:
    return f"{sweep}-sweepctl-lock"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def server_age(lease: dict[str, Any], date: str | None) -> float | None:
    """Seconds since the API server last changed `lease`, on the server's clock; None if it cannot say.

    The server stamps each manager's managedFields entry when it changes a
    field (a renewal changes renewTime), and dates its answers: both are its
    own clock, to the second.
    """
    try:
        now = email.utils.parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        now = None
    meta = lease.get("metadata") or {}
    stamps = [_parse(entry.get("time")) for entry in meta.get("managedFields") or []]
    stamps = [t for t in stamps if t is not None]
    if now is None or not stamps:
        return None
    return (now - max(stamps)).total_seconds()


class LockLost(SweepctlError):
    """The holder's Lease was taken or broken while it worked: nothing more is written."""


class SweepLease:
    """Take, renew, release or break one sweep's Lease."""

    def __init__(self, cluster: Cluster, namespace: str, sweep: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.sweep = sweep
        self.name = lease_name(sweep)
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.path = f"{self.collection}/{self.name}"
        self._lease: dict[str, Any] | None = None
        self._holder: Holder | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: str | None = None  # why the lock was lost, once it was
        self._renewed_at = 0.0  # monotonic: when the last successful take or renewal was sent
        self._changed = threading.Condition()  # renewed, or lost
        self._said_waiting = False
        self._renew_error = ""  # why the last renewal failed, if it did
        self._date: str | None = None  # the server's Date on the last read
        self._observed: tuple[str, float] | None = None  # (resourceVersion, first seen), when the server cannot say

    # -- reading -------------------------------------------------------------------------

    def _get(self) -> dict[str, Any] | None:
        headers: dict[str, str] = {}
        try:
            found = self.cluster.request("GET", self.path, answer_headers=headers)
            self._date = headers.get("date")
            return found
        except ApiError as err:
            if err.status == 404:
                return None
            raise self._explained(err) from None

    def _explained(self, err: ApiError) -> ApiError:
        if err.status == 403:
            return ApiError(f"cannot lock sweep {self.sweep}: leases.coordination.k8s.io are not granted to you "
                            f"in namespace {self.namespace} (sweepctl holds a Lease while it writes a sweep)",
                            status=403, hint=_ROLE_HINT)
        return err

    @staticmethod
    def holder_of(lease: dict[str, Any]) -> Holder | None:
        return Holder.from_json(((lease.get("metadata") or {}).get("annotations") or {}).get(INFO))

    def expired(self, lease: dict[str, Any]) -> bool:
        """Not renewed for its duration: on the API server's clock, else on this process's own (never the holder's)."""
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return True
        seconds = spec.get("leaseDurationSeconds") or LEASE_SECONDS
        age = server_age(lease, self._date)
        if age is not None:
            return age > seconds + 1  # both stamps are whole seconds
        version = (lease.get("metadata") or {}).get("resourceVersion", "")
        if self._observed is None or self._observed[0] != version:
            self._observed = (version, time.monotonic())
            return False
        return time.monotonic() - self._observed[1] > seconds

    def _check_ours(self, lease: dict[str, Any]) -> None:
        labels = (lease.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) != "sweepctl" or labels.get(SWEEP) != self.sweep:
            raise SweepctlError(f"Lease {self.namespace}/{self.name} exists and is not sweep {self.sweep}'s lock; "
                                "sweepctl never changes it",
                                hint="remove that Lease yourself if it is not needed, or rename the sweep")

    # -- taking and keeping ---------------------------------------------------------------

    def _body(self, holder: Holder, base: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro(_now())
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {MANAGED_BY: "sweepctl", SWEEP: self.sweep},
                                "annotations": {INFO: holder.to_json()}}
        if base is not None:
            meta["resourceVersion"] = base["metadata"]["resourceVersion"]
            meta["uid"] = base["metadata"]["uid"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": holder.id, "leaseDurationSeconds": LEASE_SECONDS,
                         "acquireTime": now, "renewTime": now}}

    def acquire(self, holder: Holder, *, timeout: float) -> None:
        """Take the lock, waiting up to `timeout` seconds for its holder; LockHeld when it stays held."""

        def take() -> Holder | None:
            lease = self._get()
            try:
                sent = time.monotonic()
                if lease is None:
                    self._lease = self.cluster.request("POST", self.collection, body=self._body(holder, None))
                    self._renewed_at = sent
                    return None
                self._check_ours(lease)
                if (lease.get("spec") or {}).get("holderIdentity") == holder.id:
                    # Taken by this command's own write, whose answer was lost: renew it, which also
                    # says from when it holds; if it was taken from it meanwhile, look again.
                    self._lease, self._holder = lease, holder
                    self._renew()
                    if self.lost is None:
                        return None
                    self.lost, self._lease = None, None
                    self._stop.clear()
                    return take()
                if not self.expired(lease):
                    return self.holder_of(lease) or Holder(id=lease["spec"]["holderIdentity"], user="?", host="?",
                                                           pid=0, command="?", since="?")
                self._lease = self.cluster.request("PUT", self.path, body=self._body(holder, lease))
                self._renewed_at = sent
                return None
            except ApiError as err:
                if err.status == 409:  # another command won the race: read it again, now held
                    return take_again()
                raise self._explained(err) from None

        def take_again() -> Holder | None:
            lease = self._get()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") == holder.id:
                return take()  # released meanwhile, or this command's own write: look again
            return self.holder_of(lease) or Holder(id="?", user="?", host="?", pid=0, command="?", since="?")

        context = getattr(self.cluster, "context", None)
        wait_for(take, timeout=timeout, sweep=self.sweep,
                 expires=f" (a lock that is not renewed expires {LEASE_SECONDS} s after its last renewal)",
                 where=f" --backend kubernetes{f' --context {context}' if context else ''} --namespace {self.namespace}")
        self._holder = holder
        self._stop.clear()
        set_write_guard(self.guard)
        self._renewer = threading.Thread(target=self._renew_loop, name="sweepctl-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        wait = RENEW_SECONDS
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self._renew()
            except Exception as err:  # noqa: BLE001 - never die silently: writes wait on this thread
                self._renew_error = str(err).splitlines()[0] if str(err) else type(err).__name__
                wait = 1.0  # the API server is away (or refuses): try again soon, while writes wait
                continue
            self._renew_error = ""
            # Every RENEW_SECONDS from the start of the last one; at once after one that took longer
            # (retried through an outage), so that writes go on from a fresh start.
            wait = max(0.0, started + RENEW_SECONDS - time.monotonic())

    def _renew(self) -> None:
        assert self._lease is not None and self._holder is not None
        body = {**self._lease, "spec": {**self._lease["spec"], "renewTime": _micro(_now())}}
        sent = time.monotonic()
        try:
            lease = self.cluster.request("PUT", self.path, body=body)
        except ApiError as err:
            if err.status not in (404, 409):
                raise
            current = self._get()
            if current is None or (current.get("spec") or {}).get("holderIdentity") != self._holder.id:
                self._lose(current)  # broken with `sweepctl unlock`, or expired and taken
                return
            self._lease = current
            self._renew()
            return
        with self._changed:
            self._lease, self._renewed_at = lease, sent
            self._changed.notify_all()

    def _lose(self, current: dict[str, Any] | None) -> None:
        taker = self.holder_of(current) if current is not None else None
        by = (f"{taker.describe()} took it" if taker else
              "another command took it and has released it since, or it was broken with `sweepctl unlock`")
        with self._changed:
            self.lost = (f"lost the lock of sweep {self.sweep}: {by} while this command could not renew it "
                         f"(a lock expires {LEASE_SECONDS} s after its last renewal); stopped before writing more")
            self._stop.set()
            self._changed.notify_all()

    def guard(self, method: str, path: str) -> None:
        """Before each write: go on while the lock surely holds, wait for a renewal, or stop (LockLost)."""
        if path.startswith(self.collection):
            return  # the Lease's own requests
        give_up = time.monotonic() + (self.cluster.retrying.timeout or float("inf"))
        with self._changed:
            while True:
                if self.lost is not None:
                    raise LockLost(self.lost, hint="run the command again once the other is done: what was "
                                                   "written stays, and the plan shows what is left")
                if time.monotonic() - self._renewed_at < WRITE_SECONDS:
                    return
                left = min(self.cluster.retrying.left(), give_up - time.monotonic())
                if left <= 0:
                    why = self._renew_error or "the API server did not answer"
                    raise ApiError(f"{method} {path}: not sent: the lock of sweep {self.sweep} could not be "
                                   f"renewed for {say_seconds(self.cluster.retrying.timeout)} (--timeout): {why}",
                                   status=0, cause=f"the sweep's lock could not be renewed: {why}",
                                   hint="--timeout waits longer")
                if not self._said_waiting:
                    self._said_waiting = True
                    self.cluster.retrying.notify(f"waiting to renew the lock of sweep {self.sweep} before writing")
                self._changed.wait(min(1.0, left))

    def release(self) -> bool:
        """Stop renewing and delete the Lease if it is still this command's; False if it could not be."""
        self._stop.set()
        set_write_guard(None, instead_of=self.guard)
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lease is None or self.lost is not None:
            return True
        lease, self._lease = self._lease, None
        try:
            self._delete(lease)
        except SweepctlError:
            return False
        return True

    def _delete(self, lease: dict[str, Any]) -> None:
        meta = lease["metadata"]
        body = {"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
        try:
            self.cluster.request("DELETE", self.path, body=body)
        except ApiError as err:
            if err.status == 404:
                return
            if err.status != 409:
                raise
            current = self._get()  # renewed meanwhile (by this command): delete that version
            if current is not None and (current.get("spec") or {}).get("holderIdentity") == \
                    (lease.get("spec") or {}).get("holderIdentity"):
                self._delete(current)

    def unlock(self, lock_id: str) -> Holder | None:
        """Break the lock held under `lock_id`; refused, changing nothing, for any other id."""
        lease = self._get()
        if lease is None or not (lease.get("spec") or {}).get("holderIdentity"):
            raise SweepctlError(f"sweep {self.sweep} is not locked in namespace {self.namespace}",
                                hint="nothing to unlock")
        self._check_ours(lease)
        holder = self.holder_of(lease)
        if lease["spec"]["holderIdentity"] != lock_id:
            raise SweepctlError(
                f"lock id {lock_id} does not match the lock of sweep {self.sweep}"
                + (f", held by {holder.describe()}" if holder else ""),
                hint="nothing was changed; pass the id the refusal printed")
        try:
            self._delete(lease)
        except ApiError as err:
            raise self._explained(err) from None
        return holder
