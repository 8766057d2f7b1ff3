"""The least-privilege Role exactly as the README's Permissions section documents it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_role() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Permissions"):]
    match = re.search(r"```yaml\n(apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n.*?)```", section, re.S)
    assert match, "the README's Permissions section has no Role"
    return match.group(1)
