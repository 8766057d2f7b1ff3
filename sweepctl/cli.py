"""The command line: parse arguments, pick a view, call one command, exit.

Only typer is imported at start-up; everything heavy (the Kubernetes client,
jsonschema, rich's progress, TensorFlow never) is imported by the command that
needs it, so `sweepctl --help` is instant.
"""

from __future__ import annotations

import gc
import importlib
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from sweepctl import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="sweepctl",
    help="Plan and apply TensorFlow hyperparameter sweeps, Terraform-style, "
    "on Kubernetes (Kubeflow TFJobs) or on this machine.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Output(str, Enum):
    text = "text"
    json = "json"


class BackendName(str, Enum):
    local = "local"
    kubernetes = "kubernetes"


SpecArg = Annotated[Path, typer.Argument(help="The sweep spec (YAML).", show_default=False)]
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


def _access(backend: BackendName | None, context: str | None, namespace: str | None, state_dir: Path | None) -> Any:
    from sweepctl.commands.common import Access

    return Access(backend=backend.value if backend else None, context=context, namespace=namespace,
                  state_dir=state_dir)


def _run(output: Output, command: str, **kwargs: Any) -> None:
    """Run one command module's `run` with the view chosen first; map errors to exit 1."""
    from sweepctl.core.diagnostics import SweepctlError
    from sweepctl.views import make_view

    view = make_view(output.value)
    # A plan holds every live object at once; the cyclic GC would rescan them
    # all, again and again, while they are built (half of a 10,000-trial plan).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        code = importlib.import_module(f"sweepctl.commands.{command}").run(view, **kwargs)
    except SweepctlError as err:
        view.error(err)
        code = 1
    except KeyboardInterrupt:
        view.error(SweepctlError("Interrupted.", hint="what was applied stays applied; "
                                 "run `sweepctl plan` to see what is left, and apply again to finish"))
        code = 130
    finally:
        if gc_was_enabled:
            gc.enable()
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
    max_trials: MaxTrialsOpt = 1000,
    replace: ReplaceOpt = None,
    replace_drifted: ReplaceDriftedOpt = False,
) -> None:
    """Show what apply would change, and save the plan for `sweepctl apply`."""
    _run(output, "plan", spec_path=spec, access=_access(backend, context, namespace, state_dir), out=out,
         max_trials=max_trials, replace=replace or [], replace_drifted=replace_drifted,
         detailed_exitcode=detailed_exitcode)


@app.command()
def apply(
    target: Annotated[
        Path | None,
        typer.Argument(help="A saved plan, or a spec to plan and apply. [default: the last saved plan]",
                       show_default=False),
    ] = None,
    auto_approve: AutoApproveOpt = False,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
    max_trials: MaxTrialsOpt = 1000,
    replace: ReplaceOpt = None,
    replace_drifted: ReplaceDriftedOpt = False,
) -> None:
    """Create and delete exactly what the plan says; finished trials are never restarted."""
    _run(output, "apply", target=target, access=_access(backend, context, namespace, state_dir),
         auto_approve=auto_approve, max_trials=max_trials, replace=replace or [], replace_drifted=replace_drifted)


@app.command()
def destroy(
    spec: SpecArg,
    auto_approve: AutoApproveOpt = False,
    output: OutputOpt = Output.text,
    backend: BackendOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Remove every object of the sweep (its TFJobs and TensorBoard), after a plan and a yes."""
    _run(output, "destroy", spec_path=spec, access=_access(backend, context, namespace, state_dir),
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
    app()
