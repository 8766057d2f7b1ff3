"""`sweepctl unlock SWEEP ID`: break a sweep's lock left by a command that is gone.

Only the lock held under that id is broken (the id printed by the refusal), so
a lock taken since by another command is never broken by mistake.
"""

from __future__ import annotations

from sweepctl.commands.common import Access
from sweepctl.commands.target import find_sweep
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, sweep: str, lock_id: str, access: Access) -> int:
    target = find_sweep(None, sweep, access)
    holder = target.backend.unlock(target.sweep, lock_id)
    who = f", held by {holder.describe()}" if holder else ""
    view.message(f"Unlocked sweep {target.sweep} in {target.backend.target}{who}.")
    return 0
