"""The command line: parse arguments, pick a view, call one command, exit.

Only typer is imported at start-up; everything heavy (the Kubernetes client,
jsonschema, rich's progress, TensorFlow never) is imported by the command that
needs it, so `sweepctl --help` is instant.
"""

from __future__ import annotations

import importlib
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from sweepctl import __version__
from sweepctl.completion import keep_values, plan_or_spec_files, register_shells, spec_files, sweep_names

__all__ = ["app", "main"]

app = typer.Typer(
    name="sweepctl",
    help="Plan and apply TensorFlow hyperparameter sweeps, Terraform-style, "
    "on Kubernetes (Kubeflow TFJobs or TrainJobs) or on this machine.",
    no_args_is_help=True,
    # --install-completion and --show-completion (bash, zsh, fish); what <TAB> offers: sweepctl.completion.
    add_completion=True,
    # Plain help: rich-formatted help imports ~0.2 s of rich and markdown modules,
    # which alone would make `sweepctl --help` miss its 0.3 s budget.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Output(str, Enum):
    text = "text"
    json = "json"


class BackendName(str, Enum):
    local = "local"
    kubernetes = "kubernetes"


SpecArg = Annotated[Path, typer.Argument(help="The sweep spec (YAML).", show_default=False,
                                         autocompletion=spec_files)]
OutputOpt = Annotated[Output, typer.Option("-o", "--output", help="text for people, json for scripts.")]
BackendOpt = Annotated[
    BackendName | None, typer.Option("--backend", help="Override the spec's backend.", show_default=False)
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.", show_default=False)]
NamespaceOpt = Annotated[
    str | None, typer.Option("-n", "--namespace", help="Override the spec's namespace.", show_default=False)
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Local backend: state and logs folder. [default: ./.sweepctl]",
                 show_default=False),
]
MaxTrialsOpt = Annotated[int, typer.Option("--max-trials", min=1, help="Refuse grids larger than this.")]
ReplaceOpt = Annotated[
    list[str] | None,
    typer.Option("--replace", metavar="TRIAL", help="Recreate this trial (name or id); repeatable.",
                 show_default=False),
]
ReplaceDriftedOpt = Annotated[bool, typer.Option("--replace-drifted", help="Recreate every drifted trial.")]
AutoApproveOpt = Annotated[bool, typer.Option("--auto-approve", help="Skip the confirmation.")]
TimeoutOpt = Annotated[
    str | None,
    typer.Option("--timeout", metavar="DURATION", help="Kubernetes: give up on an API server that has not answered, "
                 "or only throttled, for this long (30s, 2m; 0: never). [default: 5m]", show_default=False),
]
LockTimeoutOpt = Annotated[
    str, typer.Option("--lock-timeout", metavar="DURATION", help="Wait this long for another command's lock of "
                      "the sweep (30s, 2m); 0 refuses at once."),
]


class Rule(str, Enum):
    median = "median"


class Strategy(str, Enum):
    min = "min"
    max = "max"
    latest = "latest"


OptionalSpecArg = Annotated[
    Path | None,
    typer.Argument(help="The sweep spec (YAML). [default: the sweep of the last plan or apply, or --sweep]",
                   show_default=False, autocompletion=spec_files),
]
SweepOpt = Annotated[str | None, typer.Option("--sweep", metavar="NAME", help="The sweep, when no SPEC is given.",
                                              show_default=False, autocompletion=sweep_names)]
StrategyOpt = Annotated[
    Strategy | None,
    typer.Option("--strategy", help="Which value of each trial's series counts. [default: min when the objective "
                 "is minimized, max when maximized]", show_default=False),
]
TensorBoardUrlOpt = Annotated[
    str | None,
    typer.Option("--tensorboard-url", metavar="URL", help="Kubernetes: read metrics from this TensorBoard (e.g. a "
                 "port-forward) instead of the sweep's TensorBoard through the API server's proxy.",
                 show_default=False),
]


def _access(backend: BackendName | None, context: str | None, namespace: str | None, state_dir: Path | None,
            timeout: str | None = None, lock_timeout: str = "0s") -> Any:
    from sweepctl.commands.common import Access
    from sweepctl.core.diagnostics import SweepctlError
    from sweepctl.core.durations import parse_duration

    try:
        return Access(backend=backend.value if backend else None, context=context, namespace=namespace,
                      state_dir=state_dir,
                      timeout=None if timeout is None else parse_duration(timeout, flag="--timeout"),
                      lock_timeout=parse_duration(lock_timeout, flag="--lock-timeout"))
    except SweepctlError as err:
        return err  # reported by _run, in the output format asked for


def _run(output: Output, command: str, **kwargs: Any) -> None:
    """Run one command module's `run` with the view chosen first; map errors to exit 1."""
    from sweepctl.core.diagnostics import SweepctlError, user_error
    from sweepctl.views import make_view

    view = make_view(output.value)
    try:
        if isinstance(kwargs.get("access"), SweepctlError):
            raise kwargs["access"]
        code = importlib.import_module(f"sweepctl.commands.{command}").run(view, **kwargs)
    except SweepctlError as err:
        view.error(err)
        code = 1
    except (ModuleNotFoundError, OSError) as err:
        plain = user_error(err, command=command)
        if plain is None:
            raise
        view.error(plain)
        code = 1
    except KeyboardInterrupt:
        view.error(SweepctlError("Interrupted.", hint="what was applied stays applied; "
                                 "run `sweepctl plan` to see what is left, and apply again to finish"))
        code = 130
    finally:
        view.finish()
    raise typer.Exit(code)


@app.command()
def plan(
    spec: SpecArg,
    out: Annotated[Path, typer.Option("-out", "--out", help="Where to save the plan.")] = Path(".sweepctl/plan.json"),
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0: no changes, 1: error, 2: changes.")
    ] = False,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    timeout: TimeoutOpt = None,
    max_trials: MaxTrialsOpt = 1000,
    replace: ReplaceOpt = None,
    replace_drifted: ReplaceDriftedOpt = False,
    tensorboard_url: TensorBoardUrlOpt = None,
) -> None:
    """Show what apply would change, and save the plan for `sweepctl apply`."""
    _run(output, "plan", spec_path=spec, access=_access(backend, context, namespace, state_dir, timeout), out=out,
         max_trials=max_trials, replace=replace or [], replace_drifted=replace_drifted,
         detailed_exitcode=detailed_exitcode, tensorboard_url=tensorboard_url)


@app.command()
def apply(
    target: Annotated[
        Path | None,
        typer.Argument(help="A saved plan, or a spec to plan and apply. [default: the last saved plan]",
                       show_default=False, autocompletion=plan_or_spec_files),
    ] = None,
    auto_approve: AutoApproveOpt = False,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    timeout: TimeoutOpt = None,
    lock_timeout: LockTimeoutOpt = "0s",
    max_trials: MaxTrialsOpt = 1000,
    replace: ReplaceOpt = None,
    replace_drifted: ReplaceDriftedOpt = False,
    revive: Annotated[
        list[str] | None,
        typer.Option("--revive", metavar="TRIAL", help="Bring back this pruned trial (name or id); repeatable. "
                     "Without a spec, the last plan's or apply's spec is used.", show_default=False),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="With a SPEC: keep applying (next proposals, early stops) "
                                       "until the budget is spent and every trial finished. Rerun to continue.")]
    = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="--wait: seconds between progress lines "
                                            "and checks (local trials are judged as soon as they log).")] = 5.0,
    tensorboard_url: TensorBoardUrlOpt = None,
) -> None:
    """Create and delete exactly what the plan says; finished trials are never restarted."""
    _run(output, "apply", target=target, access=_access(backend, context, namespace, state_dir, timeout, lock_timeout),
         auto_approve=auto_approve, max_trials=max_trials, replace=replace or [], replace_drifted=replace_drifted,
         revive=revive or [], wait=wait, interval=interval, tensorboard_url=tensorboard_url)


@app.command()
def destroy(
    spec: SpecArg,
    auto_approve: AutoApproveOpt = False,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    timeout: TimeoutOpt = None,
    lock_timeout: LockTimeoutOpt = "0s",
) -> None:
    """Remove every object of the sweep (its TFJobs and TensorBoard), after a plan and a yes."""
    _run(output, "destroy", spec_path=spec, access=_access(backend, context, namespace, state_dir, timeout,
                                                           lock_timeout),
         auto_approve=auto_approve)


@app.command()
def tensorboard(
    spec: SpecArg,
    port: Annotated[int | None, typer.Option("--port", help="Local port. [default: a free one]",
                                             show_default=False)] = None,
    bind_all: Annotated[bool, typer.Option("--bind-all", help="Listen on every interface, not only loopback.")]
    = False,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Start TensorBoard on the sweep's logs (local), or say how to reach the sweep's TensorBoard (Kubernetes)."""
    _run(Output.text, "tensorboard", spec_path=spec, access=_access(backend, context, namespace, state_dir),
         port=port, bind_all=bind_all)


@app.command()
def status(
    spec: OptionalSpecArg = None,
    sweep: SweepOpt = None,
    keep: Annotated[str, typer.Option("--keep", metavar="best=K", help="Mark the best K trials.",
                                      autocompletion=keep_values)] = "best=3",
    strategy: StrategyOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds between refreshes.")] = 5.0,
    tensorboard_url: TensorBoardUrlOpt = None,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Every trial with its hyperparameters, state, step and metric, ranked; the best K marked."""
    _run(output, "status", spec_path=spec, sweep=sweep,
         access=_access(backend, context, namespace, state_dir, timeout),
         keep=keep, strategy=strategy.value if strategy else None, tensorboard_url=tensorboard_url, watch=watch,
         interval=interval)


@app.command()
def prune(
    keep: Annotated[str | None, typer.Option("--keep", metavar="best=K",
                                             help="Keep the best K trials; delete the rest.", show_default=False,
                                             autocompletion=keep_values)] = None,
    rule: Annotated[Rule | None, typer.Option("--rule", help="Instead of --keep: stop the unfinished trials that this "
                                              "early-stopping rule stops now (settings: the spec's earlyStopping).",
                                              show_default=False)] = None,
    spec: OptionalSpecArg = None,
    sweep: SweepOpt = None,
    include_unscored: Annotated[
        bool, typer.Option("--include-unscored", help="Delete trials with no metric yet too (kept by default).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be kept and deleted.")] = False,
    auto_approve: AutoApproveOpt = False,
    strategy: StrategyOpt = None,
    tensorboard_url: TensorBoardUrlOpt = None,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    timeout: TimeoutOpt = None,
    lock_timeout: LockTimeoutOpt = "0s",
) -> None:
    """Keep the best K trials by the objective and delete the others, running ones included; they stay pruned."""
    _run(output, "prune", spec_path=spec, sweep=sweep,
         access=_access(backend, context, namespace, state_dir, timeout, lock_timeout),
         keep=keep, rule=rule.value if rule else None, strategy=strategy.value if strategy else None, include_unscored=include_unscored,
         auto_approve=auto_approve, dry_run=dry_run, tensorboard_url=tensorboard_url)


@app.command()
def report(
    spec: OptionalSpecArg = None,
    out: Annotated[Path, typer.Option("-out", "--out", help="The PNG to write.")] = Path("sweep.png"),
    sweep: SweepOpt = None,
    keep: Annotated[str, typer.Option("--keep", metavar="best=K", help="Highlight the best K trials.",
                                      autocompletion=keep_values)] = "best=3",
    strategy: StrategyOpt = None,
    tensorboard_url: TensorBoardUrlOpt = None,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Draw one PNG: every trial's latest reconstruction, labelled and ranked, and every loss curve."""
    _run(output, "report", spec_path=spec, sweep=sweep, access=_access(backend, context, namespace, state_dir),
         out=out, keep=keep, strategy=strategy.value if strategy else None, tensorboard_url=tensorboard_url)


@app.command()
def runtime(
    spec: Annotated[Path | None, typer.Argument(help="A sweep spec: its kubernetes.runtime and image. [default: "
                                                "sweepctl-tensorflow, with the default image]", show_default=False,
                                                autocompletion=spec_files)]
    = None,
    apply: Annotated[bool, typer.Option("--apply", help="Create or update it in the cluster (cluster-scoped: "
                                        "needs a cluster administrator).")] = False,
    output: OutputOpt = Output.text,
    context: ContextOpt = None,
) -> None:
    """Print sweepctl's ClusterTrainingRuntime for TrainJob trials (Kubeflow Trainer v2), or --apply it."""
    _run(output, "runtime", spec_path=spec, apply=apply, context=context)


@app.command()
def unlock(
    sweep: Annotated[str, typer.Argument(metavar="SWEEP", help="The sweep whose lock to break.", show_default=False)],
    lock_id: Annotated[str, typer.Argument(metavar="ID", help="The lock's id, as the refusal printed it.",
                                           show_default=False)],
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    timeout: TimeoutOpt = None,
) -> None:
    """Break a sweep's lock left by a command that is gone (only the lock with this id)."""
    _run(Output.text, "unlock", sweep=sweep, lock_id=lock_id,
         access=_access(backend, context, namespace, state_dir, timeout))


@app.command()
def schema() -> None:
    """Print the spec's JSON Schema, for editors (yaml-language-server)."""
    import json

    from sweepctl.core.schema import SCHEMA

    typer.echo(json.dumps(SCHEMA, indent=2))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sweepctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


def main() -> None:
    command = typer.main.get_command(app)  # registers typer's completion classes; ours replace them
    register_shells()
    command()
