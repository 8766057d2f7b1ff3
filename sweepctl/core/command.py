"""A sweep's own trainer command: placeholders in `command` and `args`, checked once and rendered per trial.

Pure: tokens in, tokens out. A token is one argv element and stays one (no
shell ever splits or reads it), except `${args}`, which is a whole token that
becomes one `--name=value` token per hyperparameter.

- `${NAME}`: the hyperparameter's value as the tf-paint trainer would get it
  (spec.flag_value: 0.01, 5, true);
- `${args}`: every hyperparameter as `--name=value`, the name as the spec writes it;
- `${logDir}`: the trial's log folder;
- `$${`: a literal `${`.

A trial's log folder depends on where its backend keeps logs (a local state
folder can move), so a command can be rendered without it: each token that
holds `${logDir}` is then the list of its pieces around it (render with
log_dir=None, then with_log_dir), and a moved state folder is not a changed command.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from sweepctl.core.spec import Scalar, flag_value

__all__ = ["ARGS", "LOG_DIR", "BUILTINS", "ENV", "Problem", "problems", "render", "with_log_dir", "environment"]

ARGS = "args"
LOG_DIR = "logDir"
BUILTINS = (ARGS, LOG_DIR)
# What every trial's process also finds in its environment, on both backends.
ENV = ("SWEEPCTL_LOG_DIR", "SWEEPCTL_TRIAL", "SWEEPCTL_SWEEP")

_PART = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")


@dataclass(frozen=True)
class _Slot:
    name: str


@dataclass(frozen=True, kw_only=True)
class Problem:
    """What is wrong with token `index` of command + args (or with hyperparameter `name`), and what to do."""

    message: str
    hint: str | None = None
    index: int | None = None
    name: str | None = None


def _parts(token: str) -> Iterator[str | _Slot | None]:
    """Literal text and slots, in order; None for a `${` that is never closed."""
    pos = 0
    for match in _PART.finditer(token):
        yield token[pos:match.start()]
        text = match.group(0)
        yield "${" if text == "$${" else _Slot(match.group(1)) if match.group(1) is not None else None
        pos = match.end()
    yield token[pos:]


def problems(tokens: Sequence[str], names: Sequence[str], *, swept: Collection[str] = ()) -> list[Problem]:
    """Every mistake in a command template for these hyperparameter names.

    `swept` names the hyperparameters with more than one value (or a range):
    one that reaches no placeholder would make every trial run the same thing.
    """
    from sweepctl.core.diagnostics import did_you_mean

    known = [*names, *BUILTINS]
    out = [Problem(name=n, message=f"hyperparameter {n} has the name of the placeholder ${{{n}}}",
                   hint=f"rename it: ${{{n}}} is {'every hyperparameter as --name=value' if n == ARGS else 'the trial log folder'}")
           for n in names if n in BUILTINS]
    reached: set[str] = set()
    meant: set[str] = set()  # what a misspelt placeholder was closest to: one mistake, one error
    for i, token in enumerate(tokens):
        for part in _parts(token):
            if part is None:
                out.append(Problem(index=i, message=f"{token!r} opens a placeholder with '${{' and never closes it",
                                   hint="write ${name}, or $${ for a literal '${'"))
            elif isinstance(part, _Slot) and part.name not in known:
                hint = did_you_mean(part.name, known)
                meant.update(n for n in names if hint == f"did you mean '{n}'?")
                out.append(Problem(index=i, message=f"{token!r}: unknown placeholder ${{{part.name}}}",
                                   hint=hint or "placeholders are the hyperparameters' names, "
                                   f"${{{ARGS}}} and ${{{LOG_DIR}}}; write $${{ for a literal '${{'"))
            elif isinstance(part, _Slot):
                reached.add(part.name)
                if part.name == ARGS and token != "${args}":
                    out.append(Problem(index=i, message=f"{token!r}: ${{args}} must be a token of its own",
                                       hint="it becomes one --name=value token per hyperparameter: write it as a "
                                       "list item by itself, or use ${name} inside a token"))
    if ARGS not in reached:
        for n in names:
            if n in reached or n in BUILTINS or n in meant:
                continue
            why = "every trial would run the same thing" if n in swept else "trials would show a value they never got"
            out.append(Problem(name=n, message=f"hyperparameter {n} reaches no placeholder of command or args: {why}",
                               hint=f"pass it, e.g. \"--{n}=${{{n}}}\", or pass every hyperparameter with \"${{args}}\""))
    return out


def render(tokens: Sequence[str], params: Mapping[str, Scalar], *, log_dir: str | None,
           unpassed: Collection[str] = ()) -> list[str | list[str]]:
    """The trial's argv from a checked template (see problems).

    `unpassed` hyperparameters (a trial that ran before they were swept) are
    left out of `${args}`, as they are left out of tf-paint's flags. With
    log_dir None, a token holding `${logDir}` is the list of its pieces around it.
    """
    out: list[str | list[str]] = []
    for token in tokens:
        if token == "${args}":
            out += [f"--{k}={flag_value(v)}" for k, v in params.items() if k not in unpassed]
            continue
        pieces = [""]
        for part in _parts(token):
            if isinstance(part, _Slot) and part.name == LOG_DIR:
                if log_dir is None:
                    pieces.append("")
                    continue
                part = log_dir
            elif isinstance(part, _Slot):
                part = flag_value(params[part.name])
            pieces[-1] += part or ""
        out.append(pieces[0] if len(pieces) == 1 else pieces)
    return out


def with_log_dir(tokens: Sequence[str | Sequence[str]], log_dir: str) -> list[str]:
    """A command rendered with log_dir=None, with the trial's log folder in its place."""
    return [t if isinstance(t, str) else log_dir.join(t) for t in tokens]


def environment(*, log_dir: str, trial: str, sweep: str) -> dict[str, str]:
    """The variables every trial's process gets, so a script can log without any flag."""
    return dict(zip(ENV, (log_dir, trial, sweep), strict=True))
