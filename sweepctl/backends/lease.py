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
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sweepctl.backends.kubernetes import ApiError, Cluster
from sweepctl.backends.locking import Holder, wait_for
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.manifests import MANAGED_BY, SWEEP

__all__ = ["SweepLease", "LEASE_SECONDS", "RENEW_SECONDS", "lease_name"]

LEASE_SECONDS = 30
RENEW_SECONDS = 10
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
        self.lost = False

    # -- reading -------------------------------------------------------------------------

    def _get(self) -> dict[str, Any] | None:
        try:
            return self.cluster.request("GET", self.path)
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

    @staticmethod
    def expired(lease: dict[str, Any]) -> bool:
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return True
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        seconds = spec.get("leaseDurationSeconds") or LEASE_SECONDS
        return renewed is None or renewed + dt.timedelta(seconds=seconds) < _now()

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
                if lease is None:
                    self._lease = self.cluster.request("POST", self.collection, body=self._body(holder, None))
                    return None
                self._check_ours(lease)
                if (lease.get("spec") or {}).get("holderIdentity") == holder.id:
                    self._lease = lease  # taken by this command's own write, whose answer was lost
                    return None
                if not self.expired(lease):
                    return self.holder_of(lease) or Holder(id=lease["spec"]["holderIdentity"], user="?", host="?",
                                                           pid=0, command="?", since="?")
                self._lease = self.cluster.request("PUT", self.path, body=self._body(holder, lease))
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
        self._renewer = threading.Thread(target=self._renew_loop, name="sweepctl-lease", daemon=True)
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self._renew()
            except SweepctlError:
                continue  # the API server is away: try again at the next tick, within the lease

    def _renew(self) -> None:
        assert self._lease is not None and self._holder is not None
        body = {**self._lease, "spec": {**self._lease["spec"], "renewTime": _micro(_now())}}
        try:
            self._lease = self.cluster.request("PUT", self.path, body=body)
        except ApiError as err:
            if err.status not in (404, 409):
                raise
            current = self._get()
            if current is None or (current.get("spec") or {}).get("holderIdentity") != self._holder.id:
                self.lost = True  # broken with `sweepctl unlock`, or expired and taken
                self._stop.set()
                return
            self._lease = current
            self._renew()

    def release(self) -> bool:
        """Stop renewing and delete the Lease if it is still this command's; False if it could not be."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lease is None or self.lost:
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
