"""The command line: parse arguments, pick a view, call one command, exit.

The standard library's argparse parses: typer 0.29 coerced every argument
through pydantic, 0.1 s of imports and adapters before any command ran, a
third of the 0.3 s a warm `status` may take. Everything heavy (the
Kubernetes client, jsonschema, rich, TensorFlow never) is imported by the
command that needs it, so `sweepctl --help` is instant.

Each option's `dest` is the keyword its command module's `run` takes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sweepctl import __version__

__all__ = ["build_parser", "main"]

_ACCESS = ("backend", "context", "namespace", "state_dir")
_NO_ACCESS = ("runtime",)  # takes its own --context: it works on the cluster, not on a sweep


class _Help(argparse.HelpFormatter):
    """Show an option's default where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and "[default:" not in text \
                and action.option_strings:
            text += " [default: %(default)s]"
        return text


def _at_least(kind: Callable[[str], Any], low: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is not >= {low}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=("text", "json"), default="text",
                   help="text for people, json for scripts.")


def _access(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("local", "kubernetes"), help="Override the spec's backend.")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context to use.")
    p.add_argument("-n", "--namespace", metavar="NS", help="Override the spec's namespace.")
    p.add_argument("--state-dir", metavar="DIR", type=Path,
                   help="Local backend: state and logs folder. [default: ./.sweepctl]")


def _spec(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    if optional:
        p.add_argument("spec_path", metavar="SPEC", type=Path, nargs="?",
                       help="The sweep spec (YAML). [default: the sweep of the last plan or apply, or --sweep]")
        p.add_argument("--sweep", metavar="NAME", help="The sweep, when no SPEC is given.")
    else:
        p.add_argument("spec_path", metavar="SPEC", type=Path, help="The sweep spec (YAML).")


def _planning(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-trials", metavar="N", type=_at_least(int, 1), default=1000,
                   help="Refuse grids larger than this.")
    p.add_argument("--replace", metavar="TRIAL", action="append", default=[],
                   help="Recreate this trial (name or id); repeatable.")
    p.add_argument("--replace-drifted", action="store_true", help="Recreate every drifted trial.")


def _auto_approve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auto-approve", action="store_true", help="Skip the confirmation.")


def _metrics(p: argparse.ArgumentParser, *, strategy: bool = True) -> None:
    if strategy:
        p.add_argument("--strategy", choices=("min", "max", "latest"),
                       help="Which value of each trial's series counts. [default: min when the objective is "
                       "minimized, max when maximized]")
    p.add_argument("--tensorboard-url", metavar="URL",
                   help="Kubernetes: read metrics from this TensorBoard (e.g. a port-forward) instead of the "
                   "sweep's TensorBoard through the API server's proxy.")


def _plan(p: argparse.ArgumentParser) -> None:
    _spec(p)
    p.add_argument("-out", "--out", metavar="FILE", type=Path, default=Path(".sweepctl/plan.json"),
                   help="Where to save the plan.")
    p.add_argument("--detailed-exitcode", action="store_true", help="Exit 0: no changes, 1: error, 2: changes.")
    _planning(p)
    _metrics(p, strategy=False)


def _apply(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", type=Path, nargs="?",
                   help="A saved plan, or a spec to plan and apply. [default: the last saved plan]")
    _auto_approve(p)
    _planning(p)
    p.add_argument("--revive", metavar="TRIAL", action="append", default=[],
                   help="Bring back this pruned trial (name or id); repeatable. Without a spec, the last plan's "
                   "or apply's spec is used.")
    p.add_argument("--wait", action="store_true", help="With a SPEC: keep applying (next proposals, early stops) "
                   "until the budget is spent and every trial finished. Rerun to continue.")
    p.add_argument("--interval", metavar="SECONDS", type=_at_least(float, 0.5), default=5.0,
                   help="--wait: seconds between progress lines and checks (local trials are judged as soon as "
                   "they log).")
    _metrics(p, strategy=False)


def _destroy(p: argparse.ArgumentParser) -> None:
    _spec(p)
    _auto_approve(p)


def _tensorboard(p: argparse.ArgumentParser) -> None:
    _spec(p)
    p.add_argument("--port", metavar="PORT", type=int, help="Local port. [default: a free one]")
    p.add_argument("--bind-all", action="store_true", help="Listen on every interface, not only loopback.")


def _status(p: argparse.ArgumentParser) -> None:
    _spec(p, optional=True)
    p.add_argument("--keep", metavar="best=K", default="best=3", help="Mark the best K trials.")
    p.add_argument("--watch", action="store_true", help="Refresh until Ctrl-C.")
    p.add_argument("--interval", metavar="SECONDS", type=_at_least(float, 0.5), default=5.0,
                   help="Seconds between refreshes.")
    _metrics(p)


def _prune(p: argparse.ArgumentParser) -> None:
    _spec(p, optional=True)
    p.add_argument("--keep", metavar="best=K", help="Keep the best K trials; delete the rest.")
    p.add_argument("--rule", choices=("median",), help="Instead of --keep: stop the unfinished trials that this "
                   "early-stopping rule stops now (settings: the spec's earlyStopping).")
    p.add_argument("--include-unscored", action="store_true",
                   help="Delete trials with no metric yet too (kept by default).")
    p.add_argument("--dry-run", action="store_true", help="Only show what would be kept and deleted.")
    _auto_approve(p)
    _metrics(p)


def _runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec_path", metavar="SPEC", type=Path, nargs="?",
                   help="A sweep spec: its kubernetes.runtime and image. [default: sweepctl-tensorflow, with the "
                   "default image]")
    p.add_argument("--apply", action="store_true",
                   help="Create or update it in the cluster (cluster-scoped: needs a cluster administrator).")
    p.add_argument("--context", metavar="NAME", help="kubeconfig context to use.")


def _report(p: argparse.ArgumentParser) -> None:
    _spec(p, optional=True)
    p.add_argument("-out", "--out", metavar="FILE", type=Path, default=Path("sweep.png"), help="The PNG to write.")
    p.add_argument("--keep", metavar="best=K", default="best=3", help="Highlight the best K trials.")
    _metrics(p)


# name, help, its arguments (None: the command needs no view and no backend)
_COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None] | None], ...] = (
    ("plan", "Show what apply would change, and save the plan for `sweepctl apply`.", _plan),
    ("apply", "Create and delete exactly what the plan says; finished trials are never restarted.", _apply),
    ("destroy", "Remove every object of the sweep (its TFJobs and TensorBoard), after a plan and a yes.", _destroy),
    ("tensorboard", "Start TensorBoard on the sweep's logs (local), or say how to reach the sweep's TensorBoard "
     "(Kubernetes).", _tensorboard),
    ("status", "Every trial with its hyperparameters, state, step and metric, ranked; the best K marked.", _status),
    ("prune", "Keep the best K trials by the objective and delete the others, running ones included; they stay "
     "pruned.", _prune),
    ("report", "Draw one PNG: every trial's latest reconstruction, labelled and ranked, and every loss curve.",
     _report),
    ("runtime", "Print sweepctl's ClusterTrainingRuntime for TrainJob trials (Kubeflow Trainer v2), or --apply it.",
     _runtime),
    ("schema", "Print the spec's JSON Schema, for editors (yaml-language-server).", None),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweepctl", allow_abbrev=False, formatter_class=_Help,
        description="Plan and apply TensorFlow hyperparameter sweeps, Terraform-style, on Kubernetes "
        "(Kubeflow TFJobs or TrainJobs) or on this machine.")
    parser.add_argument("--version", action="version", version=f"sweepctl {__version__}", help="Print the version.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, text, arguments in _COMMANDS:
        sub = commands.add_parser(name, help=text, description=text, allow_abbrev=False, formatter_class=_Help)
        if arguments is not None:
            arguments(sub)
            if name != "tensorboard":
                _output(sub)
            if name not in _NO_ACCESS:
                _access(sub)
    return parser


def _schema() -> int:
    import json

    from sweepctl.core.schema import SCHEMA

    print(json.dumps(SCHEMA, indent=2))
    return 0


def _run(output: str, command: str, kwargs: dict[str, Any]) -> int:
    """Run one command module's `run` with the view chosen first; map errors to exit 1."""
    from sweepctl.commands.common import Access
    from sweepctl.core.diagnostics import SweepctlError, user_error
    from sweepctl.views import make_view

    view = make_view(output)
    try:
        if command not in _NO_ACCESS:
            kwargs["access"] = Access(**{key: kwargs.pop(key) for key in _ACCESS})
        return int(importlib.import_module(f"sweepctl.commands.{command}").run(view, **kwargs))
    except SweepctlError as err:
        view.error(err)
        return 1
    except (ModuleNotFoundError, OSError) as err:
        plain = user_error(err, command=command)
        if plain is None:
            raise
        view.error(plain)
        return 1
    except KeyboardInterrupt:
        view.error(SweepctlError("Interrupted.", hint="what was applied stays applied; "
                                 "run `sweepctl plan` to see what is left, and apply again to finish"))
        return 130
    finally:
        view.finish()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv (default: the process's), run the command, return its exit code."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        parser.print_help()
        return 2
    try:
        kwargs = vars(parser.parse_args(args))
    except SystemExit as stop:  # --help, --version, or a usage error (exit 2), already printed
        return int(stop.code or 0)
    command = kwargs.pop("command")
    if command is None:
        parser.print_help()
        return 2
    if command == "schema":
        return _schema()
    return _run(kwargs.pop("output", "text"), command, kwargs)
