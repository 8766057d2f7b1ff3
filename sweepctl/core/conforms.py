"""Whether a document surely conforms to a JSON Schema, without importing jsonschema.

jsonschema costs 0.05-0.1 s of imports, as much as a warm `status` does in
all; a spec that is valid, as specs nearly always are, needs no error
messages. `conforms` evaluates the few keywords sweepctl's schema uses, with
jsonschema's own rules (Draft 2020-12: a bool is no number, 1.0 is an
integer, `pattern` is searched, not matched). It may say False of a valid
document (a keyword or a value it does not know); it never says True of an
invalid one. On False, the loader asks jsonschema, which finds the errors.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["conforms"]

_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "default"})
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class _Unknown(Exception):
    """A keyword or value this module does not judge: let jsonschema decide."""


def conforms(instance: Any, schema: dict[str, Any]) -> bool:
    """True only if `instance` is valid against `schema`; False when invalid or not sure."""
    try:
        return _valid(instance, schema)
    except _Unknown:
        return False


def _valid(v: Any, schema: Any) -> bool:
    if schema is True or schema is False:
        return schema
    if not isinstance(schema, dict):
        raise _Unknown
    for key, rule in schema.items():
        if key in _ANNOTATIONS or key in ("then", "else"):
            continue
        if not _keyword(key, rule, v, schema):
            return False
    return True


def _keyword(key: str, rule: Any, v: Any, schema: dict[str, Any]) -> bool:
    if key == "type":
        names = rule if isinstance(rule, list) else [rule]
        if any(n not in _TYPES for n in names):
            raise _Unknown
        return any(_TYPES[n](v) for n in names)
    if key == "enum":
        if not all(isinstance(e, str) for e in rule):
            raise _Unknown
        return isinstance(v, str) and v in rule
    if key == "pattern":
        return not isinstance(v, str) or re.search(rule, v) is not None
    if key == "minLength":
        return not isinstance(v, str) or len(v) >= rule
    if key == "minimum":
        return not _TYPES["number"](v) or not v < rule
    if key == "minItems":
        return not isinstance(v, list) or len(v) >= rule
    if key == "minProperties":
        return not isinstance(v, dict) or len(v) >= rule
    if key == "uniqueItems":
        return not rule or not isinstance(v, list) or _unique(v)
    if key == "items":
        return not isinstance(v, list) or all(_valid(item, rule) for item in v)
    if key == "required":
        return not isinstance(v, dict) or all(k in v for k in rule)
    if key == "properties":
        return not isinstance(v, dict) or all(_valid(v[k], sub) for k, sub in rule.items() if k in v)
    if key == "additionalProperties":
        known = schema.get("properties", {})
        if "patternProperties" in schema:
            raise _Unknown
        return not isinstance(v, dict) or all(_valid(v[k], rule) for k in v if k not in known)
    if key == "propertyNames":
        return not isinstance(v, dict) or all(_valid(k, rule) for k in v)
    if key == "if":
        branch = schema.get("then" if _valid(v, rule) else "else", True)
        return _valid(v, branch)
    raise _Unknown


def _unique(items: list[Any]) -> bool:
    """jsonschema's uniqueItems for scalars: 1 and 1.0 are one value, true and 1 are two."""
    keys = []
    for item in items:
        if isinstance(item, bool):
            keys.append(("bool", item))
        elif isinstance(item, str):
            keys.append(("str", item))
        elif isinstance(item, int | float) and not (isinstance(item, float) and math.isnan(item)):
            keys.append(("number", item))
        else:
            raise _Unknown  # lists, mappings, null, NaN: jsonschema's rules are subtler
    return len(set(keys)) == len(keys)
