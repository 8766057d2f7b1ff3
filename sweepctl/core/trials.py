"""Trials: the grid a spec describes, each with a name that depends only on values.

A trial's identity is the sweep's name plus its hyperparameter values (not their
positions in the lists), so reordering or inserting values never renames an
existing trial, and a hyperparameter at its declared default does not count, so
adding a hyperparameter keeps the trials that ran before it existed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from sweepctl.core.spec import Scalar, Spec, flag_name, value_key

__all__ = ["Trial", "expand", "trial_id", "trial_name", "MAX_NAME"]

MAX_NAME = 63  # DNS-1035 label, as the TFJob webhook requires
_ID_CHARS = 10  # 40 bits: a collision among 10,000 trials has odds of about 1 in 20,000,000


@dataclass(frozen=True, kw_only=True)
class Trial:
    """One point of the grid.

    `params` holds every hyperparameter (for display and flags); `identity` only
    those that differ from their declared default (for naming).
    """

    sweep: str
    name: str
    id: str
    params: Mapping[str, Scalar]
    identity: Mapping[str, Scalar]

    def flags(self) -> list[str]:
        """Trainer flags for the hyperparameters, one argv element each (no shell)."""
        out: list[str] = []
        for key, value in self.identity.items():
            out += [flag_name(key), render_value(value)]
        return out


def render_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def trial_id(sweep: str, identity: Mapping[str, Scalar]) -> str:
    """A short stable hash of the sweep name and the identifying values."""
    canonical = orjson.dumps(dict(identity), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(sweep.encode() + b"\0" + canonical).hexdigest()
    return digest[:_ID_CHARS]


@functools.lru_cache(maxsize=1024)
def _abbreviation(name: str) -> str:
    """learningRate -> lr, hiddenLayers -> hl, seed -> seed."""
    words = flag_name(name)[2:].split("-")
    return words[0] if len(words) == 1 else "".join(w[0] for w in words)


@functools.lru_cache(maxsize=65536, typed=True)  # typed: True and 1 are different values
def _token(value: Scalar) -> str:
    text = render_value(value).lower().replace(".", "p").replace("+", "")
    return re.sub(r"[^a-z0-9-]+", "-", text).strip("-")


def trial_name(sweep: str, identity: Mapping[str, Scalar], tid: str) -> str:
    """`<sweep>-<hl5-lr0p01>-<id>`: readable where it fits, always unique by the id."""
    # Sorted: reordering the spec's keys must not rename trials.
    readable = "-".join(f"{_abbreviation(k)}{_token(identity[k])}" for k in sorted(identity))
    name = f"{sweep}-{readable}-{tid}" if readable else f"{sweep}-{tid}"
    if len(name) > MAX_NAME:
        name = f"{sweep}-{tid}"
    return name


def expand(spec: Spec) -> list[Trial]:
    """Every combination of the spec's values, in the spec's order."""
    names = [hp.name for hp in spec.hyper_params]
    defaults = {hp.name: hp.default for hp in spec.hyper_params if hp.default is not None}
    trials = []
    for combo in itertools.product(*(hp.values for hp in spec.hyper_params)):
        params = dict(zip(names, combo, strict=True))
        identity = {
            k: v for k, v in params.items() if not (k in defaults and value_key(v) == value_key(defaults[k]))
        }
        tid = trial_id(spec.name, identity)
        trials.append(
            Trial(sweep=spec.name, name=trial_name(spec.name, identity, tid), id=tid, params=params, identity=identity)
        )
    return trials
