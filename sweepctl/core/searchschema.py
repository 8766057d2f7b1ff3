"""The JSON Schema of search: the algorithm and budget, ranges, and early stopping.

Kept apart from schema.py so that the search fields live in one place; schema.py
places them in the spec's schema.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SEARCH", "RANGE", "EARLY_STOPPING", "ALGORITHMS", "DEFAULT_PARALLEL", "DEFAULT_STARTUP_TRIALS"]

ALGORITHMS = ("grid", "random", "tpe")
DEFAULT_PARALLEL = 4
# Optuna's own default, written down: TPE's first proposals are random until this
# many trials have finished (or been stopped).
DEFAULT_STARTUP_TRIALS = 10

SEARCH: dict[str, Any] = {
    "description": "How trials are chosen. grid (the default): every combination of the lists. "
    "random: `trials` points drawn from a seeded stream, trial k depending only on (seed, k). "
    "tpe: Bayesian search (Optuna's TPE), proposing from every trial the sweep has.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "algorithm": {"enum": list(ALGORITHMS), "default": "grid"},
        "trials": {
            "description": "The budget (random and tpe, required there): trials ever started, "
            "failed and stopped ones included.",
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
        },
        "parallel": {
            "description": "tpe: at most this many unfinished trials at once; a plan proposes "
            "min(parallel - unfinished, trials - started) new ones.",
            "type": "integer",
            "minimum": 1,
            "default": DEFAULT_PARALLEL,
        },
        "seed": {
            "description": "Seed of the random stream and of TPE's sampler.",
            "type": "integer",
            "minimum": 0,
            "default": 0,
        },
        "startupTrials": {
            "description": "tpe: proposals stay random (seeded by the trial's index) until this "
            "many trials have finished or been stopped.",
            "type": "integer",
            "minimum": 1,
            "default": DEFAULT_STARTUP_TRIALS,
        },
    },
    "default": {},
}

RANGE: dict[str, Any] = {
    "description": "A range of numbers to sample from (random and tpe search).",
    "required": ["min", "max"],
    "additionalProperties": False,
    "properties": {
        "min": {"type": "number"},
        "max": {"type": "number"},
        "scale": {"enum": ["linear", "log"], "default": "linear"},
        "type": {"enum": ["float", "int"], "default": "float"},
    },
}

EARLY_STOPPING: dict[str, Any] = {
    "description": "Stop (prune, with the reason) a trial whose best value by step s is worse than "
    "the median of the other trials' values at step s, once minTrials other trials reached step s. "
    "Applied by `sweepctl apply --wait` and `sweepctl prune --rule median`.",
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["rule"],
    "properties": {
        "rule": {"enum": ["median"]},
        "afterStep": {
            "description": "No trial is stopped at a step before this one.",
            "type": "integer",
            "minimum": 0,
            "default": 0,
        },
        "minTrials": {
            "description": "How many other trials must have reached a step before it is judged.",
            "type": "integer",
            "minimum": 1,
            "default": 3,
        },
    },
    "default": None,
}
