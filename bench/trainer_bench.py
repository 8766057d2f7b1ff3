"""Benchmark of the tf-paint trainer against the lab's TF1 baseline, all in one run.

Measures (a) steps/s and samples/s at batch 50 for the baseline (bench/baseline_tf1.py) and
for our compiled loop, at several thread counts, interleaved over --rounds rounds; (b) the
PSNR the lab's recipe reaches (the baseline trained --baseline-steps steps, the lab's 400,000
by default, in the two configurations the lab found best), and how long our default recipe
takes to reach it; (c) the lab's nine configurations (learning rate x hidden layers) with the
default recipe: final PSNR and wall seconds per trial, TensorFlow import included; (d) FLOPs
per step against a measured matrix-multiply rate. Prints Markdown for bench/RESULTS.md,
including the command line it was run with and the picture's name, size and checksum.

Usage: python bench/trainer_bench.py --image PATH [--rounds 3] [--baseline-steps 400000] [--skip-grid]
Each measurement runs in its own process so that thread settings and warm caches don't leak.
Run it on an idle machine: the load average is printed before and after each part.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from model.network import HIDDEN_UNITS, coordinate_features  # noqa: E402

# The lab's conclusion (its README): the two best pictures were 5 layers at lr 0.01 and 7 at lr 0.001.
LAB_BEST = ((0.01, 5), (0.001, 7))
LAB_STEPS = 2000 * 200  # the lab's 2,000 epochs of 200 batches
BATCH = 50
SIZE = 100
LEARNING_RATES = (0.001, 0.01, 0.1)
HIDDEN_LAYERS = (5, 6, 7)
THROUGHPUT_EPOCHS = 20  # timed epochs for our loop: 4,000 steps at 100 x 100, batch 50
BASELINE_STEPS = 4000


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def worker_ours(image: str, threads: int, layers: int) -> dict:
    """Steady-state steps/s of our compiled epoch loop (compilation excluded)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf

    from model.data import load_picture
    from model.train import Config, Model

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.config.experimental.enable_op_determinism()
    config = Config(learning_rate=0.01, hidden_layers=layers, log_dir="", image=image, size=SIZE,
                    epochs=THROUGHPUT_EPOCHS + 1, batch_size=BATCH, seed=0, threads=threads,
                    encoding="fourier")
    model = Model(tf, config, load_picture(image, SIZE))
    model.train_epochs(1)  # traces and compiles
    started = time.perf_counter()
    model.train_epochs(THROUGHPUT_EPOCHS)
    seconds = time.perf_counter() - started
    steps = THROUGHPUT_EPOCHS * model.steps_per_epoch
    return {"steps": steps, "seconds": seconds, "steps_per_second": steps / seconds}


def worker_matmul(threads: int) -> dict:
    """FLOP/s of float32 tf.matmul: a large square one and the network's own small shape."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    rates = {}
    for name, (m, k, n), repeats in (("1024x1024x1024", (1024, 1024, 1024), 20),
                                     ("50x20x20", (BATCH, HIDDEN_UNITS, HIDDEN_UNITS), 20000)):
        a = tf.random.uniform((m, k))
        b = tf.random.uniform((k, n))

        @tf.function(jit_compile=True)
        def chain(a, b, count):
            # Feed each product back in so that no multiply can be skipped or hoisted.
            def body(i, x):
                return i + 1, tf.matmul(x, b)[:, :k] * 0.5 + a
            return tf.while_loop(lambda i, x: i < count, body, (0, a))[1]

        chain(a, b, 2).numpy()
        best = 0.0
        for _ in range(3):
            started = time.perf_counter()
            chain(a, b, repeats).numpy()
            best = max(best, 2 * m * k * n * repeats / (time.perf_counter() - started))
        rates[name] = best
    return rates


def spawn(args: list[str]) -> dict:
    """Run a command that prints one JSON object on its last line; return that object."""
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def throughput(image: str, rounds: int) -> dict[str, list[float]]:
    """steps/s samples per variant, variants interleaved so that load drifts hit all alike."""
    variants = {
        "baseline, 1 thread": [sys.executable, "bench/baseline_tf1.py", "--image", image,
                               "--steps", str(BASELINE_STEPS), "--threads", "1"],
        "baseline, TF default threads": [sys.executable, "bench/baseline_tf1.py", "--image", image,
                                         "--steps", str(BASELINE_STEPS), "--threads", "0"],
    }
    for threads, label in ((1, "1 thread"), (2, "2 threads"), (0, "TF default threads")):
        variants[f"ours, {label}"] = [sys.executable, __file__, "--worker", "ours", "--image", image,
                                      "--threads", str(threads)]
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, command in variants.items():
            samples[name].append(spawn(command)["steps_per_second"])
    return samples


def lab_quality(image: str, steps: int) -> list[dict]:
    """The lab's recipe (the baseline) in its two best configurations, trained `steps` steps and scored.

    Side by side, one thread each: only their PSNR counts here (the same seed gives the same picture).
    """
    from concurrent.futures import ThreadPoolExecutor

    commands = [[sys.executable, "bench/baseline_tf1.py", "--image", image, "--steps", str(steps), "--threads", "1",
                 "--learning-rate", str(rate), "--hidden-layers", str(layers)] for rate, layers in LAB_BEST]
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(spawn, commands))


def psnr_curve(log_dir: str) -> list[tuple[int, float, float]]:
    """(step, psnr, wall time) of every psnr summary in a run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(log_dir, size_guidance={"tensors": 0})
    accumulator.Reload()
    return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)), e.wall_time)
            for e in accumulator.Tensors("psnr")]


def grid(image: str, root: str, target: float, epochs: int | None) -> list[dict]:
    """The lab's nine configurations, one trial at a time, with the default recipe; when each reached target dB."""
    trials = []
    for rate in LEARNING_RATES:
        for layers in HIDDEN_LAYERS:
            log_dir = os.path.join(root, f"lr{rate}-layers{layers}")
            started_at = time.time()
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "model", "--image", image, "--learning-rate", str(rate),
                            "--hidden-layers", str(layers), "--log-dir", log_dir,
                            *(["--epochs", str(epochs)] if epochs else [])],
                           cwd=REPO, capture_output=True, check=True)
            wall = time.perf_counter() - started
            with open(os.path.join(log_dir, "metrics.json"), encoding="utf-8") as handle:
                metrics = json.load(handle)
            curve = psnr_curve(log_dir)
            reached = next(((step, wall_time) for step, value, wall_time in curve if value >= target), None)
            trials.append({
                "learning_rate": rate, "hidden_layers": layers, "psnr": metrics["psnr"],
                "best_summary_psnr": max(value for _, value, _ in curve),
                "loss": metrics["loss"], "wall": wall, "train_seconds": metrics["seconds"],
                "steps": metrics["steps"], "epochs": metrics["epochs"],
                "end_to_end_steps_per_second": metrics["steps_per_second"],
                "reach_step": reached[0] if reached else None,
                "reach_from_step0": reached[1] - curve[0][2] if reached else None,
                "reach_from_launch": reached[1] - started_at if reached else None,
                "load_after": load(),
            })
    return trials


def flops_per_step(inputs: int, hidden_layers: int, batch: int) -> dict[str, int]:
    """FLOPs of one training step, matrix products exact, element-wise work at 1 FLOP per element-op.

    Forward: x @ W per layer (2*b*i*o). Backward: dW = h^T @ dy per layer (2*b*i*o) and
    dx = dy @ W^T for every layer but the first (its input is data). Element-wise: bias add
    and activation forward, activation gradient and bias-gradient sum backward (b*o each), the
    loss and its gradient (about 5*b*3), and Adam's update (about 10 per parameter).
    """
    widths = [inputs] + [HIDDEN_UNITS] * hidden_layers + [3]
    pairs = list(zip(widths[:-1], widths[1:]))
    forward = sum(2 * batch * i * o for i, o in pairs)
    backward = forward + sum(2 * batch * i * o for i, o in pairs[1:])
    params = sum((i + 1) * o for i, o in pairs)
    elementwise = 4 * batch * sum(o for _, o in pairs) + 5 * batch * 3 + 10 * params
    return {"params": params, "matmul": forward + backward, "elementwise": elementwise,
            "rule_of_thumb": 6 * params * batch}


def picture(path: str) -> str:
    """The picture as the report names it: file name, pixels and checksum, so that a rerun can use the same."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:16]
    return f"{os.path.basename(path)} ({width}x{height}, sha256 {digest}...), resized to {SIZE}x{SIZE}"


def command_line() -> str:
    """How this run was started, from the repository's root, as it can be typed again."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
    return shlex.join(["python", script, *sys.argv[1:]])


def report(args: argparse.Namespace, samples: dict, trials: list[dict], matmul: dict, loads: dict,
           lab: list[dict]) -> str:
    """Markdown with every figure measured above."""
    import numpy
    import PIL
    import tensorflow as tf

    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    lines += [f"Run {now} on {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
              f"TensorFlow {tf.__version__}, NumPy {numpy.__version__}, Pillow {PIL.__version__}.",
              f"Picture: {picture(args.image)}.",
              f"Command: `{command_line()}`.",
              f"Load average (1, 5, 15 min): {loads['start']} at start, {loads['after_throughput']} after (a), "
              f"{loads['end']} at the end.", ""]

    lines += ["### (a) Training throughput, batch 50, 6 hidden layers, 100x100",
              f"Steady state (compilation and warm-up excluded): baseline {BASELINE_STEPS} timed steps after "
              f"200 warm-up steps; ours {THROUGHPUT_EPOCHS} epochs of 200 steps after one compiling epoch. "
              f"Median (min-max) of {args.rounds} interleaved rounds, one process each.", "",
              "| variant | steps/s | samples/s |", "|---|---:|---:|"]
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values)
        lines.append(f"| {name} | {medians[name]:,.0f} ({min(values):,.0f}-{max(values):,.0f}) "
                     f"| {medians[name] * BATCH:,.0f} |")
    base = max(medians["baseline, 1 thread"], medians["baseline, TF default threads"])
    ours = medians["ours, 1 thread"]
    lines += ["", f"Ours (1 thread, the default) / best baseline: **{ours / base:.1f}x** steps/s.", ""]

    if trials:
        target = max(b["psnr"] for b in lab)
        default = next(t for t in trials if t["learning_rate"] == 0.01 and t["hidden_layers"] == 6)
        lines += [f"### (b) The lab's recipe ({target:.2f} dB), and the time our default recipe (lr 0.01, 6 layers) "
                  "takes to reach it",
                  f"The baseline trained {lab[0]['steps']:,} steps (after {lab[0]['warmup_steps']} warm-up steps; "
                  f"the lab ran {LAB_STEPS:,}), 1 thread, in the two configurations the lab found best, scored on "
                  "the whole picture: "
                  + "; ".join(f"lr {b['learning_rate']}, {b['hidden_layers']} layers: {b['psnr']:.2f} dB" for b in lab)
                  + ".", ""]
        if default["reach_step"] is None:
            lines.append(f"Ours did not reach {target:.2f} dB.")
        else:
            lines.append(f"First summary at >= {target:.2f} dB: step {default['reach_step']:,}, "
                         f"{default['reach_from_step0']:.1f} s after the step-0 summary (this includes the XLA "
                         f"compilation of the training loop), {default['reach_from_launch']:.1f} s after the "
                         f"process was launched (TensorFlow import included); {default['reach_step'] / ours:.2f} s "
                         f"of training at the steady-state rate of (a).")
        lines += ["", "### (c) The lab's nine configurations with the default recipe",
                  f"{default['epochs']} epochs x {default['steps'] // default['epochs']} steps, batch 50, one trial "
                  "at a time. Wall = launch to exit of `python -m model` (TensorFlow import included); "
                  "train = the training loop (compilation and summaries included).", "",
                  "| lr | layers | final PSNR dB | best summary PSNR dB | wall s | train s | end-to-end steps/s "
                  f"| s to {target:.2f} dB (from launch) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for t in trials:
            reach = f"{t['reach_from_launch']:.1f}" if t["reach_step"] is not None else "never"
            lines.append(f"| {t['learning_rate']} | {t['hidden_layers']} | {t['psnr']:.2f} | "
                         f"{t['best_summary_psnr']:.2f} | {t['wall']:.1f} | {t['train_seconds']:.1f} | "
                         f"{t['end_to_end_steps_per_second']:,.0f} | {reach} |")
        best = max(trials, key=lambda t: t["psnr"])
        lines += ["", f"Best: {best['psnr']:.2f} dB (lr {best['learning_rate']}, {best['hidden_layers']} layers); "
                  f"slowest trial {max(t['wall'] for t in trials):.1f} s wall.", ""]

    inputs = coordinate_features(SIZE, "fourier").shape[1]
    flops = flops_per_step(inputs, 6, BATCH)
    total = flops["matmul"] + flops["elementwise"]
    achieved = total * ours
    lines += [f"### (d) Arithmetic limit, default network ({inputs} input features, 6 x {HIDDEN_UNITS} hidden, 3 out)",
              f"Parameters: {flops['params']:,}. FLOPs per step at batch 50: matrix products "
              f"{flops['matmul']:,} (exact), element-wise and Adam about {flops['elementwise']:,}, total about "
              f"{total:,} (the 6 x params x batch rule of thumb says {flops['rule_of_thumb']:,}).",
              f"Measured float32 matmul (XLA, in a loop): 1024x1024x1024 at {matmul['1']['1024x1024x1024'] / 1e9:.1f} "
              f"GFLOP/s on 1 thread and {matmul['2']['1024x1024x1024'] / 1e9:.1f} GFLOP/s on 2; the network's own "
              f"50x20x20 product at {matmul['1']['50x20x20'] / 1e9:.1f} GFLOP/s on 1 thread.",
              f"Our loop at {ours:,.0f} steps/s does {achieved / 1e9:.2f} GFLOP/s: "
              f"{100 * achieved / matmul['1']['1024x1024x1024']:.0f}% of the 1-thread large-matmul rate, so a step "
              f"costs {1e6 / ours:.0f} us against {1e6 * total / matmul['1']['1024x1024x1024']:.0f} us of arithmetic "
              f"at that rate: the loop is bound by per-kernel overhead, not by compute."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="picture to train on (the lab used a 400x400 Starry Night)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (default 3)")
    parser.add_argument("--baseline-steps", type=int, default=LAB_STEPS,
                        help=f"(b): steps the lab's recipe trains before it is scored (default {LAB_STEPS:,}: "
                        "the lab's)")
    parser.add_argument("--epochs", type=int, help="(b) and (c): epochs of our nine trials (default: the recipe's 300)")
    parser.add_argument("--skip-grid", action="store_true", help="skip (b) and (c), the nine full trials")
    parser.add_argument("--worker", choices=("ours", "matmul"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "ours":
        print(json.dumps(worker_ours(os.path.abspath(args.image), args.threads, 6)))
        return
    if args.worker == "matmul":
        print(json.dumps(worker_matmul(args.threads)))
        return
    if not args.image:
        parser.error("--image is required")
    image = os.path.abspath(args.image)

    loads = {"start": load()}
    print(f"load average at start: {loads['start']}", file=sys.stderr)
    samples = throughput(image, args.rounds)
    loads["after_throughput"] = load()
    print(json.dumps(samples), file=sys.stderr)
    matmul = {str(t): spawn([sys.executable, __file__, "--worker", "matmul", "--threads", str(t)]) for t in (1, 2)}
    print(json.dumps(matmul), file=sys.stderr)
    trials, lab = [], []
    if not args.skip_grid:
        lab = lab_quality(image, args.baseline_steps)
        print(json.dumps(lab), file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="trainer-bench-") as root:
            trials = grid(image, root, max(b["psnr"] for b in lab), args.epochs)
        print(json.dumps(trials), file=sys.stderr)
    loads["end"] = load()
    print(report(args, samples, trials, matmul, loads, lab))


if __name__ == "__main__":
    main()
