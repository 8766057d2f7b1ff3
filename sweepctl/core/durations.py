"""Durations as kubectl and Terraform write them on the command line: `30s`, `2m`, `1m30s`, `0`."""

from __future__ import annotations

import re

from sweepctl.core.diagnostics import SweepctlError

__all__ = ["parse_duration", "say_seconds"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, *, flag: str) -> float:
    """Seconds from `1h2m3s`-style text (a bare number is seconds), or a clear error naming the flag."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise SweepctlError(f"{flag} {text!r} is not a duration",
                            hint=f"write it as kubectl does: {flag} 30s, {flag} 2m, {flag} 1m30s (0: do not wait)")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def say_seconds(seconds: float) -> str:
    """A wait in words: `2 s`, `0.5 s`, `1 min 30 s`."""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min" + (f" {whole % 60} s" if whole % 60 else "")
