"""Diagnostics: problems found in user input, each pinned to a file position.

Validation collects every problem it can find before giving up, so that a user
fixes a spec in one round; one handler in the CLI prints them all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Diagnostic", "SweepctlError", "SpecError", "TRAIN_EXTRA", "did_you_mean", "user_error"]

# Modules that come with `pip install 'sweepctl[train]'`, by top-level name.
TRAIN_EXTRA = frozenset({"tensorflow", "tensorboard", "PIL", "matplotlib", "numpy"})


@dataclass(frozen=True, kw_only=True)
class Diagnostic:
    """One problem: what is wrong, where (1-based line/column), and what to do."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    @property
    def location(self) -> str:
        """`file:line:col`, as editors and compilers print it."""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def to_json(self) -> dict[str, object]:
        return {
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


class SweepctlError(Exception):
    """An error meant for the user: it carries diagnostics, never a traceback."""

    def __init__(self, diagnostics: Iterable[Diagnostic] | str, *, hint: str | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(message=diagnostics, hint=hint)]
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class SpecError(SweepctlError):
    """The spec is invalid; nothing was contacted and nothing was changed."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt key, or None when nothing is close."""
    import difflib  # only when there is a mistake to suggest a fix for

    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not close:
        lowered = word.lower()
        close = [c for c in candidates if c.lower() == lowered or (len(word) >= 3 and c.lower().startswith(lowered))]
    return f"did you mean '{close[0]}'?" if close else None


def user_error(err: BaseException, *, command: str) -> SweepctlError | None:
    """A plain error for what is the machine's, not sweepctl's, fault; None for a real bug.

    A missing optional dependency names the extra that brings it; a path that
    cannot be written or read says which and why.
    """
    if isinstance(err, ModuleNotFoundError) and err.name:
        top = err.name.split(".")[0]
        if top in TRAIN_EXTRA:
            return SweepctlError(f"`sweepctl {command}` needs {top}, from the train extra: "
                                 "pip install 'sweepctl[train]'")
        return SweepctlError(f"`sweepctl {command}` needs the module {top}, which is missing: "
                             "reinstall sweepctl (pip install --force-reinstall sweepctl)")
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return SweepctlError(f"{where}{err.strerror or err}")
    return None
