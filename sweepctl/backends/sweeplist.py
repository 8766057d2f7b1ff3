"""Sweep names in a namespace, listed without the Kubernetes client: for shell completion.

A <TAB> must answer in well under 150 ms, and importing the kubernetes package
alone takes longer. So this reads the kubeconfig as kubectl does (KUBECONFIG's
files merged, the first to set a key wins; the current context, or the one
given) and makes one LIST with the standard library: the Services labelled as
sweeps' TensorBoards, metadata only. Every sweep has exactly one, so the answer
stays small however many trials there are, and the README Role may list them.
It never writes. What it cannot do quickly (exec and auth-provider credentials,
a server that does not answer within the timeout) gives no names rather than
an error: completion then offers only fewer names.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:  # ssl, yaml and http.client are imported only where a kubeconfig is there to use
    import ssl

__all__ = ["ListTarget", "list_target", "namespace_sweeps"]

# The labels of a sweep's TensorBoard (core.manifests: MANAGED_BY, COMPONENT, SWEEP), spelled out
# here because importing the manifests module costs a completion more than the LIST does.
_SELECTOR = "app.kubernetes.io/managed-by=sweepctl,app.kubernetes.io/component=tensorboard"
_SWEEP_LABEL = "sweepctl.dev/sweep"
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"


@dataclass(frozen=True, kw_only=True)
class ListTarget:
    """Where to LIST and how to authenticate: the server, the namespace, TLS and headers."""

    server: str
    namespace: str
    tls: ssl.SSLContext | None
    headers: dict[str, str]


def _kubeconfig_files() -> list[Path]:
    value = os.environ.get("KUBECONFIG")
    if value:
        return [Path(p).expanduser() for p in value.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _merged() -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Path]]:
    """The merged kubeconfig: current-context, {kind: {name: entry}}, and the file each entry came from."""
    top: dict[str, Any] = {}
    named: dict[str, dict[str, Any]] = {"contexts": {}, "clusters": {}, "users": {}}
    origin: dict[str, Path] = {}
    for path in _kubeconfig_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        import yaml

        try:
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("current-context") and "current-context" not in top:
            top["current-context"] = doc["current-context"]
        for kind, entries in named.items():
            for entry in doc.get(kind) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"] not in entries:
                    entries[entry["name"]] = entry.get(kind[:-1]) or {}
                    origin[f"{kind}/{entry['name']}"] = path.parent
    return top, named, origin


def _data_or_file(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """`<key>-data` (base64) or the file `<key>` names, relative to its kubeconfig's folder."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / Path(entry[key]).expanduser()).read_bytes()
    return None


def _tls(cluster: dict[str, Any], user: dict[str, Any], cluster_dir: Path, user_dir: Path) -> ssl.SSLContext:
    import ssl

    ca = _data_or_file(cluster, "certificate-authority", cluster_dir)
    # The cluster's own CA only, when it names one: loading the system's bundle too costs a <TAB> 10-20 ms.
    tls = ssl.create_default_context(cadata=ca.decode("ascii", "replace") if ca is not None else None)
    if cluster.get("insecure-skip-tls-verify"):
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    cert = _data_or_file(user, "client-certificate", user_dir)
    key = _data_or_file(user, "client-key", user_dir)
    if cert is not None and key is not None:
        import tempfile

        # ssl loads a client certificate from files only: a private folder, gone right after.
        with tempfile.TemporaryDirectory(prefix="sweepctl-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(cert)
            key_file.touch(mode=0o600)
            key_file.write_bytes(key)
            tls.load_cert_chain(cert_file, key_file)
    return tls


def list_target(*, context: str | None, namespace: str | None) -> ListTarget | None:
    """The server, namespace and credentials of a kubeconfig context, or None where there is none to use.

    The namespace is `namespace`, else the context's, else `default`, as the backend chooses it.
    """
    top, named, origin = _merged()
    context_name = context or top.get("current-context")
    ctx = named["contexts"].get(context_name or "")
    if not isinstance(ctx, dict):
        return None
    cluster = named["clusters"].get(ctx.get("cluster") or "")
    user = named["users"].get(ctx.get("user") or "", {})
    if not isinstance(cluster, dict) or not isinstance(user, dict) or not cluster.get("server"):
        return None
    if user.get("exec") or user.get("auth-provider"):
        return None  # a credential plugin may take seconds (a cloud CLI): too slow for a <TAB>
    if cluster.get("tls-server-name") or cluster.get("proxy-url"):
        return None  # http.client can neither check another name nor use a proxy: offer nothing rather than guess
    headers = {"Accept": _METADATA_LIST}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (origin[f"users/{ctx['user']}"] / user["tokenFile"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username") and user.get("password"):
        basic = base64.b64encode(f"{user['username']}:{user['password']}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    server = str(cluster["server"]).rstrip("/")
    tls = None
    if server.startswith("https://"):
        tls = _tls(cluster, user, origin[f"clusters/{ctx['cluster']}"], origin.get(f"users/{ctx.get('user')}", Path()))
    return ListTarget(server=server, namespace=namespace or ctx.get("namespace") or "default", tls=tls,
                      headers=headers)


def namespace_sweeps(*, context: str | None = None, namespace: str | None = None,
                     timeout: float = 1.0) -> list[str]:
    """The sweeps in the namespace, by their TensorBoard Services; [] when they cannot be listed quickly."""
    try:
        target = list_target(context=context, namespace=namespace)
    except (OSError, ValueError, KeyError):
        return []  # an unreadable certificate or token file (ssl.SSLError is an OSError): nothing to offer
    if target is None:
        return []
    import http.client
    import json
    url = urlsplit(target.server)
    path = (f"{url.path}/api/v1/namespaces/{quote(target.namespace, safe='')}/services"
            f"?labelSelector={quote(_SELECTOR, safe='')}")
    conn: http.client.HTTPConnection
    if target.tls is not None:
        conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=timeout, context=target.tls)
    else:
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=target.headers)
        resp = conn.getresponse()
        if resp.status != 200:
            return []  # forbidden, or no such namespace: nothing to offer
        items = json.loads(resp.read()).get("items") or []
    except (OSError, ValueError, http.client.HTTPException):
        return []
    finally:
        conn.close()
    names = {((i.get("metadata") or {}).get("labels") or {}).get(_SWEEP_LABEL) for i in items if isinstance(i, dict)}
    return sorted(n for n in names if isinstance(n, str) and n)
