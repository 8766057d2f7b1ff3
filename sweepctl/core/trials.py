"""Trials: the grid a spec describes, each with a name that depends only on values.

A trial's identity is the sweep's name plus its hyperparameter values as the
trainer receives them (not their positions in the lists), so reordering or
inserting values never renames an existing trial, and a hyperparameter at its
declared default does not count, so adding a hyperparameter keeps the trials
that ran before it existed. Every value is passed to the trainer, defaults
included: what a trial shows is what it ran.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from sweepctl.core.spec import Scalar, Spec, canonical_value, flag_name, flag_value

__all__ = ["Trial", "expand", "trial_id", "trial_name", "MAX_NAME"]

MAX_NAME = 63  # DNS-1035 label, as the TFJob webhook requires
_ID_CHARS = 10  # 40 bits: a collision among 10,000 trials has odds of about 1 in 20,000,000


@dataclass(frozen=True, kw_only=True)
class Trial:
    """One point of the grid.

    `params` holds every hyperparameter (for display and flags); `identity` only
    those that differ from their declared default (for naming). `unpassed`
    names the hyperparameters a live trial ran without, because it ran before
    they were swept (see plan.as_recorded): its flags stay as they were.
    """

    sweep: str
    name: str
    id: str
    params: Mapping[str, Scalar]
    identity: Mapping[str, Scalar]
    unpassed: frozenset[str] = field(default_factory=frozenset)

    def flags(self) -> list[str]:
        """Trainer flags for every hyperparameter, one argv element each (no shell)."""
        out: list[str] = []
        for key, value in self.params.items():
            if key not in self.unpassed:
                out += [flag_name(key), flag_value(value)]
        return out


def _same_as_flag(value: Scalar) -> Scalar:
    """One value for each text the trainer can receive: "0.01" is 0.01, "true" is true; "010" stays "010".

    A string is hashed as the number or boolean that the trainer would receive
    as the very same text; every other value hashes as itself, as it always did.
    """
    if not isinstance(value, str):
        return canonical_value(value)
    if value in ("true", "false"):
        return value == "true"
    try:
        number = canonical_value(int(value) if value.lstrip("-").isdigit() else float(value))
    except ValueError:
        return value
    return number if math.isfinite(number) and flag_value(number) == value else value


def trial_id(sweep: str, identity: Mapping[str, Scalar]) -> str:
    """A short stable hash of the sweep name and the identifying values, as the trainer gets them."""
    canonical = orjson.dumps({k: _same_as_flag(v) for k, v in identity.items()}, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(sweep.encode() + b"\0" + canonical).hexdigest()
    return digest[:_ID_CHARS]


@functools.lru_cache(maxsize=1024)
def _abbreviation(name: str) -> str:
    """learningRate -> lr, hiddenLayers -> hl, seed -> seed; learning_rate (a command's) -> lr."""
    words = re.split(r"[-_]", flag_name(name)[2:])
    return words[0] if len(words) == 1 else "".join(w[0] for w in words)


@functools.lru_cache(maxsize=65536, typed=True)  # typed: True and 1 are different values
def _token(value: Scalar) -> str:
    """0.01 -> 0p01, -0.01 -> m0p01, 1e-05 -> 1e-05, 'SGD with momentum' -> sgd-with-momentum."""
    text = flag_value(value).lower().replace(".", "p").replace("+", "")
    if text.startswith("-"):
        text = "m" + text[1:]  # -0.01 and 0.01 must read differently
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
            k: v for k, v in params.items() if not (k in defaults and flag_value(v) == flag_value(defaults[k]))
        }
        tid = trial_id(spec.name, identity)
        trials.append(
            Trial(sweep=spec.name, name=trial_name(spec.name, identity, tid), id=tid, params=params, identity=identity)
        )
    return trials
