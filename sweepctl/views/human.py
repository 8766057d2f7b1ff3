"""The human view: plans, progress and errors rendered with rich, Terraform-style."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.text import Text

from sweepctl.backends.base import ApplyResult, Progress, RunningTrial
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import PRUNED, Action, Change, Plan
from sweepctl.core.search import FINISHED

if TYPE_CHECKING:
    from sweepctl.metrics.ranking import PruneSelection, SweepStatus, TrialStatus
    from sweepctl.metrics.sheet import Sheet

__all__ = ["HumanView", "UNCHANGED_SHOWN"]

UNCHANGED_SHOWN = 20  # unchanged trials listed one by one; the rest are counted by state

_STYLE = {
    Action.CREATE: "green",
    Action.DELETE: "red",
    Action.REPLACE: "magenta",
    Action.UPDATE: "yellow",
    Action.NOOP: "dim",
}
_STATE_STYLE = {"Succeeded": "green", "Failed": "red", "Running": "cyan", "Pending": "yellow", "Queued": "yellow",
                "Interrupted": "yellow",
                PRUNED: "dim"}
STAR = "★"  # marks the current best K in `status` and the kept trials in `prune`


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _painter(console: Console) -> Callable[[str, str], str]:
    """(text, style) -> the text as this console prints it: with ANSI codes on a colour terminal, as is elsewhere.

    For tables of thousands of rows written as one string: rich renders each
    Text span through its whole pipeline, 0.15 s for a 1,000-trial status.
    """
    system = console.color_system
    if system is None:  # a pipe, or NO_COLOR
        return lambda text, style: text
    from rich.console import COLOR_SYSTEMS
    from rich.style import Style

    styles: dict[str, Style] = {}

    def paint(text: str, style: str) -> str:
        if not text or not style:
            return text
        if style not in styles:
            styles[style] = Style.parse(style)
        return styles[style].render(text, color_system=COLOR_SYSTEMS[system])

    return paint


def _params(change: Change) -> str:
    return " ".join(f"{k}={v}" for k, v in change.params.items())


def _line(glyph: str, style: str, change: Change, note: str = "", *, width: int = 0) -> Text:
    text = Text("  ")
    text.append(f"{glyph:>3} ", style=f"bold {style}")
    text.append(change.name.ljust(width), style=style)
    state = f"({change.state})" if change.state else ""
    text.append(f"  {state:<13}", style=_STATE_STYLE.get(change.state, ""))
    if change.params:
        text.append(_params(change), style="dim")
    if note:
        text.append(f"  {note}", style="italic")
    return text



def _ended_unscored(t: TrialStatus) -> bool:
    """A finished trial without a metric: it will never have one."""
    return t.rank is None and t.state in FINISHED

class _LiveProgress:
    """A progress bar, plus one row per running trial with its latest loss (local backend)."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.console = console
        self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=console)
        self.task = self.bar.add_task("Applying", total=total)
        self.rows: Sequence[RunningTrial] = ()
        self.counts = ""

    def done(self, change: Change, error: str | None) -> None:
        self.bar.advance(self.task)  # errors are printed at the end, one line per cause (applied)

    def running(self, trials: Sequence[RunningTrial], *, finished: int, queued: int) -> None:
        self.rows = trials
        self.counts = f"{finished} finished, {len(trials)} running, {queued} queued"

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table

        if not self.rows:
            return self.bar
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("trial", "hyperparameters", "loss", "time"):
            table.add_column(column, style="dim" if column == "hyperparameters" else "")
        for row in self.rows:
            loss = "-" if row.loss is None else f"{row.loss:.4g}"
            params = " ".join(f"{k}={v}" for k, v in row.params.items())
            table.add_row(row.name, params, loss, f"{row.seconds:.0f}s")
        return Group(self.bar, table, Text(self.counts, style="dim"))


def error_lines(errors: Mapping[str, str], *, examples: int = 3) -> list[str]:
    """One line per cause, not per object: `12 trials: connection refused (a, b, c, ...)`, most frequent first.

    Objects share a cause when their errors are the same but for their own names.
    """
    by_cause: dict[str, list[str]] = {}
    for name, error in errors.items():
        by_cause.setdefault(error.replace(name, "\0"), []).append(name)
    lines = []
    for cause, names in sorted(by_cause.items(), key=lambda item: (-len(item[1]), item[0])):
        names.sort()
        if len(names) == 1:
            lines.append(f"{names[0]}: {cause.replace(chr(0), names[0])}")
            continue
        shown = ", ".join(names[:examples]) + (", ..." if len(names) > examples else "")
        lines.append(f"{len(names)} objects: {cause.replace(chr(0), '<name>')} ({shown})")
    return lines


class HumanView:
    """Rich output on stdout; progress and errors on stderr."""

    redraws = True

    def __init__(self, *, color: bool | None = None) -> None:
        # emoji=False: names and paths are printed as they are (`a:fire:b` stays), and rich's
        # emoji table (8 ms of import) is never loaded.
        self.out = Console(highlight=False, no_color=color is False, soft_wrap=True, emoji=False)
        self.err = Console(stderr=True, highlight=False, no_color=color is False, soft_wrap=True, emoji=False)

    def plan(self, plan: Plan, *, saved_to: str | None = None, apply_command: str | None = None) -> None:
        out = self.out
        where = f"{plan.backend}: {plan.target}"
        if not plan.has_changes and not plan.drifted:
            self._unchanged(plan)
            out.print(f"\n[bold green]No changes.[/] Sweep [bold]{escape(plan.sweep)}[/] matches its spec ({escape(where)}).")
            self._search(plan)
            return
        verb = "destroy" if plan.destroy else "perform the following actions on"
        out.print(f"sweepctl will {verb} sweep [bold]{escape(plan.sweep)}[/] ({escape(where)}):\n")
        w = max((len(c.name) for c in plan.trials), default=0)
        lines: list[Text] = []
        lines += [_line("+", "green", c, "revived" if c.state == PRUNED else "", width=w) for c in plan.add]
        lines += [_line("-", "red", c, width=w) for c in plan.delete]
        # Trials with the same difference (a changed template) are shown once, the first 20 by name.
        same: dict[tuple[Action, tuple[str, ...]], list[Change]] = {}
        for change in plan.drifted:
            same.setdefault((change.action, change.drift), []).append(change)
        for (action, drift), changes in same.items():
            for change in changes[:UNCHANGED_SHOWN]:
                if action is Action.REPLACE:
                    lines.append(_line("-/+", "magenta", change, "drifted: will be recreated", width=w))
                else:
                    lines.append(_line("~", "yellow", change,
                                       f"drifted: left alone (--replace {change.name} recreates it)", width=w))
            if len(changes) > UNCHANGED_SHOWN:
                lines.append(Text(f"  ... and {len(changes) - UNCHANGED_SHOWN} more drifted trials", style="dim"))
            if len(changes) > 1:
                lines.append(Text(f"        each of these {len(changes)} trials differs the same way:", style="yellow"))
            lines += [Text(f"        {d}", style="yellow") for d in drift]
        lines += [_line("-/+", "magenta", c, "will be recreated", width=w) for c in plan.replace if not c.drift]
        if lines:
            out.print(Text("\n").join(lines))  # one print: rich's per-call cost adds up over thousands of lines
        self._unchanged(plan)
        for change in plan.support:
            if change.action is not Action.NOOP:
                out.print(Text(f"  {change.action.value:>3} ", style=f"bold {_STYLE[change.action]}")
                          + Text(f"TensorBoard {change.kind} {change.name}", style=_STYLE[change.action]))
                for d in change.drift:
                    out.print(Text(f"        {d}", style="yellow"))
        for need in plan.requires if plan.blocked else ():
            out.print(Text("  ! ", style="bold red") + Text(f"needed first: {need}", style="red"))
        s = plan.summary
        out.print(f"\n[bold]Plan:[/] {s['add']} to add, {s['change']} to change, {s['destroy']} to destroy.")
        self._search(plan)
        if not plan.has_changes:
            out.print("No changes to apply: drifted trials are left alone.")
        if saved_to:
            out.print(f"\nSaved the plan to [bold]{escape(saved_to)}[/]."
                      + (f" To apply exactly these actions, run: [bold]{escape(apply_command)}[/]"
                         if apply_command else ""))

    def _search(self, plan: Plan) -> None:
        """The budget of a random or TPE search, after the plan's proposals."""
        s = plan.search
        if s:
            running = f" ({s['unfinished']} unfinished)" if s["unfinished"] else ""
            self.out.print(f"[bold]Search:[/] {s['algorithm']}, budget {s['budget']}: {s['started']} started{running}, "
                           f"{s['proposed']} proposed now, {s['left']} left.")

    def _unchanged(self, plan: Plan) -> None:
        unchanged = plan.unchanged
        width = max((len(c.name) for c in plan.trials), default=0)
        for change in unchanged[:UNCHANGED_SHOWN]:
            self.out.print(_line("", "dim", change, width=width))
        rest = unchanged[UNCHANGED_SHOWN:]
        if rest:
            states = Counter(c.state for c in rest)
            counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            self.out.print(f"  [dim]... and {len(rest)} more unchanged trials ({counts})[/]")
        for change in plan.pruned[:UNCHANGED_SHOWN]:
            self.out.print(_line("", "dim", change, f"pruned (sweepctl apply --revive {change.name} brings it back)",
                                 width=width))
        if len(plan.pruned) > UNCHANGED_SHOWN:
            self.out.print(f"  [dim]... and {len(plan.pruned) - UNCHANGED_SHOWN} more pruned trials "
                           "(sweepctl status lists them)[/]")

    @contextmanager
    def applying(self, plan: Plan) -> Iterator[Progress]:
        from rich.live import Live

        total = sum(1 for c in plan.trials if c.action is not Action.NOOP) + len(plan.support_changes)
        live_progress = _LiveProgress(self.err, total)
        with Live(live_progress, console=self.err, refresh_per_second=4, transient=True):
            yield live_progress

    def applied(self, plan: Plan, result: ApplyResult, *, logs: str | None = None,
                look_command: str | None = None) -> None:
        counts = f"Resources: {result.added} added, {result.changed} changed, {result.destroyed} destroyed."
        if result.errors:
            for line in error_lines(result.errors):
                self.err.print(Text(f"  error: {line}", style="red"))
            what = "Prune" if plan.prune else "Apply"
            again = "run `sweepctl plan` and apply again" if not plan.prune else \
                "run the prune again, or `sweepctl plan` and apply (it deletes what is recorded as pruned)"
            self.err.print(f"\n[bold red]{what} incomplete:[/] {len(result.errors)} failed. {counts}\n"
                           f"Fix the errors above, then {again}; what was done stays done.")
        else:
            self.out.print(f"\n[bold green]Apply complete![/] {counts}")
        if result.removed:
            why = Counter(result.removed.values())
            self.out.print(" and ".join(f"{n} {'trial' if n == 1 else 'trials'} {verb}" for verb, n in sorted(why.items()))
                           + " by another command while this apply ran (stopped, not failed).")
        if look_command and logs:
            self.out.print(f"Look at the results: [bold]{escape(look_command)}[/] "
                           f"(each trial's log folder is in {escape(logs)}).")

    def confirm(self, plan: Plan, question: str) -> bool:
        self.out.print(f"\n[bold]{escape(question)}[/]\n  Only 'yes' will be accepted to approve.\n")
        try:
            answer = input("  Enter a value: ")
        except EOFError:
            answer = ""
        return answer.strip() == "yes"

    def message(self, text: str) -> None:
        self.out.print(text)

    def manifest(self, obj: dict[str, Any]) -> None:
        import yaml

        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False))  # as is: no markup, no wrapping
        sys.stdout.flush()

    def status(self, status: SweepStatus, *, refresh: bool = False) -> None:
        s = status
        title = (f"Sweep [bold]{escape(s.sweep)}[/] ({escape(s.backend)}: {escape(s.target)}): "
                 f"{len(s.live)} trials ranked by {escape(s.metric)} ({s.goal}, strategy {s.strategy}); "
                 f"{STAR} the best {s.keep}")
        # Aligned by hand and written as one string: rich measures and renders a
        # thousand rows' cells one by one (0.15 s; a Table takes seconds).
        cells = [
            (str(t.rank or ""), t.name, " ".join(f"{k}={v}" for k, v in t.params.items()), t.state,
             "-" if t.step is None else str(t.step), _num(t.latest), _num(t.best))
            for t in s.trials
        ]
        header = ("#", "trial", "hyperparameters", "state", "step", f"latest {s.metric}", f"best {s.metric}")
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
        right = (True, False, False, False, True, True, True)

        def cell(text: str, i: int) -> str:
            return text.rjust(widths[i]) if right[i] else text.ljust(widths[i])

        paint = _painter(self.out)
        lines = [paint("   " + "  ".join(cell(h, i) for i, h in enumerate(header)), "bold")]
        for t, row in zip(s.trials, cells):
            dim = t.state == PRUNED
            lines.append(paint(f"{STAR} " if t.top else "  ", "bold yellow") + " " + cell(row[0], 0) + "  "
                         + paint(cell(row[1], 1), "dim" if dim else "bold" if t.top else "")
                         + paint("  " + cell(row[2], 2) + "  ", "dim")
                         + paint(cell(row[3], 3), _STATE_STYLE.get(t.state, ""))
                         + paint("  " + "  ".join(cell(row[i], i) for i in (4, 5, 6)), "dim" if dim else "")
                         # why it stopped; or, for a finished trial without a metric, what its logs hold
                         + paint(f"  {t.note}" if t.note and (dim or _ended_unscored(t)) else "", "dim italic"))
        if refresh:
            self.out.clear()
        self.out.print(title)
        self.out.file.write("\n".join(line.rstrip() for line in lines) + "\n")
        self.out.file.flush()
        self._unscored(s)
        self._failures(s)
        self._notes(s.notes)

    def _failures(self, s: SweepStatus, *, most: int = 5) -> None:
        """Why failed trials failed: their exit status and last output lines, as the backend saw them (the first few)."""
        failed = [t for t in s.trials if t.failure]
        for t in failed[:most]:
            head, *tail = (t.failure or "").splitlines()
            self.out.print(f"[red]{escape(t.name)}[/] {escape(head)}", highlight=False)
            for line in tail:
                self.out.print(f"    {escape(line)}", highlight=False, soft_wrap=True)
        if len(failed) > most:
            self.out.print(f"[dim]{len(failed) - most} more failed trials: `-o json` has each one's output[/]")

    def _unscored(self, s: SweepStatus) -> None:
        ended = [t for t in s.live if _ended_unscored(t)]
        if ended:  # these will never have it: say so, never "yet"
            self.out.print(f"[yellow]{len(ended)} finished without {escape(s.metric)}[/] (each one's note says "
                           "what its logs hold)")
        unscored = [t for t in s.live if t.rank is None and not _ended_unscored(t)]
        if unscored:
            notes = Counter(t.note or "no metric" for t in unscored)
            self.out.print(f"[dim]{len(unscored)} without a metric yet: "
                           + escape(", ".join(f"{n} {why}" for why, n in notes.most_common(3))) + "[/]")

    def _notes(self, notes: Sequence[str]) -> None:
        """How the metrics were read, when the user can make it better: on stderr, beside the output."""
        for note in notes:
            self.err.print(f"[yellow]Note:[/] {escape(note)}")

    def prune_plan(self, selection: PruneSelection, *, dry_run: bool) -> None:
        s = selection.status
        out = self.out
        width = max((len(t.name) for t in s.live), default=0)

        paint = _painter(out)

        def line(glyph: str, style: str, t: TrialStatus, note: str = "") -> str:
            return ("  " + paint(f"{glyph:>3} ", f"bold {style}") + paint(t.name.ljust(width), style)
                    + paint(f"  {s.metric} {_num(t.metric):>9}  ", "bold" if glyph == STAR else "")
                    + paint(f"{'(' + t.state + ')':<13}", _STATE_STYLE.get(t.state, ""))
                    + paint(" ".join(f"{k}={v}" for k, v in t.params.items()), "dim")
                    + (paint(f"  {note}", "italic") if note else ""))

        if selection.rule:
            out.print(f"sweepctl will stop trials of sweep [bold]{escape(s.sweep)}[/] ({escape(s.backend)}: "
                      f"{escape(s.target)}) by {escape(selection.rule)}, on {escape(s.metric)} ({s.goal}):\n")
        else:
            out.print(f"sweepctl will prune sweep [bold]{escape(s.sweep)}[/] ({escape(s.backend)}: {escape(s.target)}),"
                      f" keeping the best {s.keep} by {escape(s.metric)} ({s.goal}, strategy {s.strategy}):\n")
        lines = [line(STAR if not selection.rule else "", "green", t, "keep") for t in selection.keep]
        lines += [line("?", "yellow", t, f"keep: no metric{'' if _ended_unscored(t) else ' yet'} "
                       f"({t.note or 'none'}); --include-unscored deletes it")
                  for t in selection.unscored_kept]
        for t in selection.delete:
            note = "delete: no metric yet" if t.metric is None else t.note or "delete"
            lines.append(line("-", "red", t, note + (" (running: stops it)" if t.state == "Running" else "")))
        if lines:  # one write: a thousand rich prints take a quarter of a second
            out.file.write("\n".join(lines) + "\n")
            out.file.flush()
        out.print(f"\n[bold]Prune:[/] {len(selection.keep) + len(selection.unscored_kept)} to keep, "
                  f"{len(selection.delete)} to delete. Pruned trials are recorded: plans never re-add them "
                  "(sweepctl apply --revive TRIAL brings one back).")
        if dry_run:
            out.print("Dry run: nothing was changed.")
        self._notes(s.notes)

    def report(self, sheet: Sheet) -> None:
        best = ", ".join(t.name for t in sheet.tiles if t.top) or "none yet"
        self.out.print(f"Wrote [bold]{escape(sheet.path)}[/]: {len(sheet.tiles)} trials, "
                       f"{sum(t.has_image for t in sheet.tiles)} with a reconstruction; best: {escape(best)}")
        self._notes(sheet.notes)

    def finish(self) -> None:
        pass  # printed as it went

    def error(self, err: SweepctlError) -> None:
        for d in err.diagnostics:
            where = f"{escape(d.location)}: " if d.file or d.line else ""
            self.err.print(f"[bold red]Error:[/] {where}{escape(d.message)}")
            if d.hint:
                self.err.print(f"  [dim]hint:[/] {escape(d.hint)}")
