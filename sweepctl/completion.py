"""Shell completion: what <TAB> offers for specs, saved plans, `--sweep` and `--keep`.

typer calls these while the shell waits, in a fresh process per <TAB>, so they
import nothing heavy: no Kubernetes client, TensorFlow, Optuna, jsonschema or
rich. The shell classes below replace typer's for the same reason (its zsh and
fish ones render every help text through rich), and the bash one puts back the
words bash splits at `=` (`--keep best=3` reaches it as `best`, `=`, `3`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from typer import _completion_classes as typer_shells
from typer import _completion_shared
from typer._click.shell_completion import CompletionItem, ShellComplete, add_completion_class

__all__ = ["KEEP_COUNTS", "keep_values", "plan_or_spec_files", "register_shells", "spec_files", "sweep_names"]

SPEC_SUFFIXES = (".yaml", ".yml")
KEEP_COUNTS = (1, 3, 5, 10)


def _files(incomplete: str, suffixes: tuple[str, ...]) -> list[str]:
    """Folders and files with one of the suffixes that start with `incomplete`, as typed (`~` kept)."""
    folder, slash, prefix = incomplete.rpartition("/")
    where = os.path.expanduser(folder or "/") if slash else "."
    try:
        entries = sorted(os.scandir(where), key=lambda e: e.name)
    except OSError:
        return []
    items = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            items.append(f"{folder}{slash}{entry.name}/")
        elif entry.name.endswith(suffixes):
            items.append(f"{folder}{slash}{entry.name}")
    return items


def spec_files(incomplete: str) -> list[str]:
    """Sweep specs: *.yaml and *.yml files, and folders to look in."""
    return _files(incomplete, SPEC_SUFFIXES)


def plan_or_spec_files(incomplete: str) -> list[str]:
    """What apply takes: a spec, or a saved plan (*.json)."""
    return _files(incomplete, (*SPEC_SUFFIXES, ".json"))


def _param(ctx: Any, name: str) -> Any:
    value = (getattr(ctx, "params", None) or {}).get(name)
    return getattr(value, "value", value)  # an Enum (--backend) by its value


def sweep_names(ctx: Any, incomplete: str) -> list[str]:
    """Sweeps in the local state folder (--state-dir, else ./.sweepctl) and in the current namespace.

    The namespace is -n, else the kubeconfig context's (--context, else the
    current one), else `default`; `--backend local` skips the cluster, and
    `--backend kubernetes` the local state.
    """
    from sweepctl.workspace import DEFAULT_STATE_DIR, sweeps_in

    backend = _param(ctx, "backend")
    names: set[str] = set()
    if backend != "kubernetes":
        names.update(sweeps_in(Path(_param(ctx, "state_dir") or DEFAULT_STATE_DIR)))
    if backend != "local":
        from sweepctl.backends.sweeplist import namespace_sweeps

        names.update(namespace_sweeps(context=_param(ctx, "context"), namespace=_param(ctx, "namespace")))
    return sorted(n for n in names if n.startswith(incomplete))


def keep_values(incomplete: str) -> list[str]:
    """`best=K` for a few K (any K is accepted); bash and zsh first insert their common `best=`."""
    values = [f"best={k}" for k in KEEP_COUNTS]
    return [v for v in values if v.startswith(incomplete)]


# -- the shells ---------------------------------------------------------------------------

_BASH_SCRIPT = """
%(complete_func)s() {
    local IFS=$'\\n'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \\
                   COMP_CWORD=$COMP_CWORD \\
                   %(autocomplete_var)s=complete_bash $1 ) )
    # A folder or `best=` is only the start of the word: no space after it.
    if [[ ${#COMPREPLY[@]} -eq 1 && ( ${COMPREPLY[0]} == */ || ${COMPREPLY[0]} == *= ) ]]; then
        compopt -o nospace
    fi
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s
"""


def glue_bash_words(words: list[str], cword: int) -> tuple[list[str], str]:
    """The words as typed, from bash's words split at `=` (its COMP_WORDBREAKS), and bash's current word.

    `--keep best=3` reaches the shell function as `--keep`, `best`, `=`, `3`
    with the cursor on `3` (on the `=` right after one). An `=` word, and a word
    right after one, belong to the word before. The last word returned is the
    one being completed; bash replaces only its own current word.
    """
    current = words[cword] if cword < len(words) else ""
    typed = words[:cword + 1] if cword < len(words) else [*words, ""]
    glued: list[str] = []
    for i, word in enumerate(typed):
        if glued and (word == "=" or (typed[i - 1] == "=" and i < len(words))):
            glued[-1] += word
        else:
            glued.append(word)
    return glued, current


def _bash_cut(value: str, word: str, current: str) -> str:
    """What replaces bash's current word so that the whole word becomes `value`."""
    # The part already on the line: before bash's current word, or all of it right after an `=` (readline then
    # replaces the empty text after the `=`, though COMP_WORDS shows the `=` as the current word).
    fixed = word if current == "=" else word[:len(word) - len(current)]
    if not value.startswith(fixed) and word.startswith("-") and "=" in fixed:
        fixed = fixed.split("=", 1)[1]  # --keep=best=: the option completes the value after its `=`
    return value[len(fixed):] if fixed and value.startswith(fixed) else value


class _ShellFiles(ShellComplete):
    """click's Path type answers with the word itself, typed `file`: that is left to the shell's own file
    completion (bash's -o default, zsh's _files, fish's files), which only happens when nothing is offered."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        return [i for i in super().get_completions(args, incomplete)
                if not (i.type in ("file", "dir") and i.value == incomplete)]


class BashComplete(_ShellFiles, typer_shells.BashComplete):
    """typer's bash completion, with the words bash split at `=` put back together."""

    source_template = _BASH_SCRIPT
    _word = _current = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        from typer._click.shell_completion import split_arg_string

        words = split_arg_string(os.environ["COMP_WORDS"])
        glued, self._current = glue_bash_words(words, int(os.environ["COMP_CWORD"]))
        self._word = glued[-1]
        return glued[1:-1], glued[-1]

    def format_completion(self, item: CompletionItem) -> str:
        return _bash_cut(str(item.value), self._word, self._current)


def _plain(text: str) -> str:
    return " ".join(text.split())


class ZshComplete(_ShellFiles, typer_shells.ZshComplete):
    """typer's zsh completion, with help texts as written (sweepctl's have no markup) instead of through rich."""

    def format_completion(self, item: CompletionItem) -> str:
        value = super().format_completion(CompletionItem(item.value))
        if not item.help:
            return value
        return f"{value}:{super().format_completion(CompletionItem(_plain(item.help)))}"  # escaped as typer does


class FishComplete(_ShellFiles, typer_shells.FishComplete):
    """typer's fish completion, with help texts as written instead of through rich."""

    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.value}\t{_plain(item.help)}" if item.help else str(item.value)


def register_shells() -> None:
    """Use the classes above for bash, zsh and fish, after typer registered its own.

    `--show-completion` and `--install-completion` write typer's script table,
    not the class's template: bash's entry is replaced too (typer is pinned
    below 0.29 in pyproject.toml, and tests/completion checks the script).
    """
    for cls in (BashComplete, ZshComplete, FishComplete):
        add_completion_class(cls, cls.name)
    _completion_shared._completion_scripts["bash"] = _BASH_SCRIPT
