"""Benchmark `sweepctl status` on Kubernetes: 1,000 trials read from a real TensorBoard through the API server's proxy.

Run:  .venv/bin/python bench/tensorboard_bench.py [--trials 1000] [--repeat 3] [--events DIR]

The runs are status_bench.py's: the real trainer's event file (run once here,
or `--events DIR`) copied into one folder per trial. A real TensorBoard serves
them (`--load_fast true`: its Rust data server; rereading every 5 s, as the
sweep's TensorBoard does) on a non-loopback address of this host, for as long
as the benchmark runs. In the test control plane
(started here, or SWEEPCTL_TEST_KUBECONFIG's; no kubelet), `sweepctl apply`
creates the sweep's TFJobs and its TensorBoard Service, and the Service is
routed to that process (tests/tensorboard_helpers.py: a Pod object with this
host's address and an EndpointSlice naming it), so `sweepctl status` reads
through the API server's service proxy exactly as on a cluster. It prints:
  - the floor: TensorBoard answering one scalars_multirun POST for every
    trial, directly; and directly, the tag index plus that POST, and the
    tag index plus one GET per trial;
  - `sweepctl status` end to end (a fresh process), as admin and as a user
    with the README's Role, and the requests the API server proxied for it
    (its own count, `apiserver_request_total`), also for 10 and 100 trials;
  - the fallback: the same Role without `create` on services/proxy, where the
    POST is refused and status reads one trial per request.
Prints a Markdown table for bench/RESULTS.md, with the machine's load.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_bench import SWEEPCTL, control_plane, grid_spec, print_table  # noqa: E402
from readme_role import readme_role  # noqa: E402
from status_bench import arguments, make_sweep, timed, trainer_run  # noqa: E402
from tensorboard_helpers import host_address, proxy_requests, route_service, serve  # noqa: E402


def direct(fn, repeat: int) -> tuple[float, float]:
    """Best and median of `repeat` timed calls, after one untimed (TensorBoard's caches warm)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    args = arguments(repeat=3)
    load_before = os.getloadavg()
    host = host_address()
    if host is None:
        raise SystemExit("this host has no non-loopback IPv4 address for the API server to proxy to")
    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.core.manifests import tensorboard_name
    from sweepctl.metrics.tensorboard import read_runs, url_fetch

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, control_plane("tb") as (kubectl_argv, ns):
        root = Path(tmp)
        source = args.events or trainer_run(root)[0]
        make_sweep(root, source, args.trials)
        logs = root / ".sweepctl" / "sweeps" / "bench" / "logs"
        names = sorted(p.name for p in logs.iterdir())

        def kubectl(*argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*kubectl_argv, *argv], input=input, capture_output=True, text=True, check=True)

        spec = root / "k.yaml"
        spec.write_text(grid_spec("bench", ns, args.trials))
        subprocess.run([*SWEEPCTL, "apply", str(spec), "--auto-approve", "--max-trials", str(args.trials)], cwd=root,
                       check=True, stdout=subprocess.DEVNULL)
        jobs = json.loads(kubectl("-n", ns, "get", "tfjobs", "-o", "json").stdout)["items"]
        assert sorted(j["metadata"]["name"] for j in jobs) == names, "the TFJobs are not the runs' trials"
        # The README's Role for the restricted user; a second one, without create on the proxy, for the fallback.
        role = readme_role()
        get_only = re.sub(r"(resources: \[services/proxy\].*\n\s*verbs: )\[[^\]]*\]", r"\1[get]",
                          role).replace("name: sweepctl", "name: sweepctl-get-only")
        kubectl("-n", ns, "apply", "-f", "-", input=role + "---\n" + get_only)
        kubectl("-n", ns, "create", "rolebinding", "sweepctl", "--role=sweepctl", "--user=restricted")

        started = time.perf_counter()
        with serve(logs, host=host, ready=lambda index: sum("loss" in t for t in index.values()) == len(names),
                   timeout=600, extra=("--load_fast", "true", "--reload_interval", "5")) as url:
            rows.append((f"TensorBoard loading the {len(names):,} runs (from its start)",
                         f"{time.perf_counter() - started:.1f} s", ""))
            route_service(kubectl, ns, tensorboard_name("bench"), url)

            def bulk_post() -> None:
                body = urllib.parse.urlencode([("tag", "loss"), *(("runs", n) for n in names)]).encode()
                data = json.loads(urllib.request.urlopen(url + "data/plugin/scalars/scalars_multirun", data=body,
                                                         timeout=120).read())
                assert len(data) == len(names) and all(data[n] for n in names)

            def tags_and_post() -> None:
                json.loads(urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=120).read())
                bulk_post()

            def per_run_direct() -> None:
                runs = read_runs(_get_only(url_fetch(url)), names, ["loss"], where=url).runs
                assert all(r.scalars["loss"].points for r in runs.values())

            floor_best, floor = direct(bulk_post, args.repeat)
            rows.append((f"floor: TensorBoard answering one scalars_multirun POST for all {len(names):,} trials, "
                         "directly", f"{floor_best:.2f} s (median {floor:.2f} s)", "1"))
            best, median = direct(tags_and_post, args.repeat)
            rows.append(("directly: the tag index, then that POST (2 requests)",
                         f"{best:.2f} s (median {median:.2f} s)", f"{median / floor:.1f}x the floor"))
            best, median = direct(per_run_direct, args.repeat)
            rows.append((f"directly: the tag index, then one GET per trial ({len(names) + 1:,} requests)",
                         f"{best:.2f} s (median {median:.2f} s)", f"{median / floor:.1f}x the floor"))

            status = [*SWEEPCTL, "status", str(spec)]
            for label, argv in [("as admin", status),
                                ("as a user with the README's Role", [*status, "--context", "restricted@testbed"])]:
                timed(argv, root)  # warm: the page cache, TensorBoard's caches
                before = proxy_requests(kubectl)
                times = [timed(argv, root) for _ in range(args.repeat)]
                proxied = (proxy_requests(kubectl) - before) / args.repeat
                rows.append((f"`sweepctl status`, {len(names):,} trials through the service proxy, {label}",
                             f"{min(times):.2f} s (median {statistics.median(times):.2f} s); "
                             f"{proxied:g} proxied requests",
                             f"5 s or less; {statistics.median(times) / floor:.1f}x the floor"))

            counts = []
            for n in sorted({n for n in (10, 100, len(names)) if n <= len(names)}):
                before = proxy_requests(kubectl)
                runs = KubernetesBackend(cluster=Cluster(), namespace=ns).read_runs("bench", names[:n], ["loss"])
                assert all(r.scalars["loss"].points for r in runs.values())
                counts.append(f"{n:,}: {proxy_requests(kubectl) - before}")
            rows.append(("proxied requests to read the metric of N trials (the API server's count)",
                         "; ".join(counts), "does not grow with N"))
            start = [sys.executable, "-c", "import sweepctl.cli; from sweepctl.backends.kubernetes import Cluster; "
                     "Cluster()"]
            started = statistics.median(timed(start, root) for _ in range(args.repeat))
            backend = KubernetesBackend(cluster=Cluster(), namespace=ns)
            observe = direct(lambda: backend.observe("bench"), args.repeat)[1]
            read = direct(lambda: backend.read_runs("bench", names, ["loss"]), args.repeat)[1]
            rows.append(("where status's time goes (medians): start Python, import sweepctl and the Kubernetes "
                         "client; observe the TFJobs; read the metrics (tag index + POST through the proxy, decode)",
                         f"{started:.2f} s; {observe:.2f} s; {read:.2f} s", f"read: {read / floor:.1f}x the floor"))

            kubectl("-n", ns, "create", "rolebinding", "sweepctl-get-only", "--role=sweepctl-get-only",
                    "--user=restricted")
            kubectl("-n", ns, "delete", "rolebinding", "sweepctl")
            slow = [*status, "--context", "restricted@testbed"]
            said = subprocess.run(slow, cwd=root, capture_output=True, text=True, check=True).stderr
            (note,) = [line for line in said.splitlines() if line.startswith("Note:")]
            before = proxy_requests(kubectl)
            times = [timed(slow, root) for _ in range(args.repeat)]
            proxied = (proxy_requests(kubectl) - before) / args.repeat
            rows.append(("fallback: the README's Role without `create` on services/proxy (the POST is refused, "
                         "one GET per trial)",
                         f"{min(times):.2f} s (median {statistics.median(times):.2f} s); "
                         f"{proxied:g} proxied requests",
                         f"{statistics.median(times) / floor:.1f}x the floor"))
    print_table(rows, load_before)
    print(f"\nThe fallback's note (stderr): `{note}`")


def _get_only(fetch):
    """The fetch without its POST: read_runs then reads run by run, as when the POST is refused."""
    from sweepctl.metrics.tensorboard import FetchError

    def fetch_get(path: str, query: list[tuple[str, str]], *, form: list[tuple[str, str]] | None = None) -> bytes:
        if form is not None:
            raise FetchError("POST not used here", status=405)
        return fetch(path, query)

    return fetch_get


if __name__ == "__main__":
    main()
