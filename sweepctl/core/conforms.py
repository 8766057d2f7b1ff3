"""Whether a document conforms to a JSON Schema: fastjsonschema's compiled validator.

jsonschema costs about 0.17 s of imports, most of a warm `status`; a spec that
is valid, as specs nearly always are, needs no error messages. fastjsonschema
compiles the schema into Python once per process (about 30 ms) and checks a
spec in microseconds. Its rules are draft 7's, which for the keywords
sweepctl's schema uses agree with jsonschema's Draft 2020-12: a bool is no
number, 1.0 is an integer, `pattern` is searched (tests/core/test_conforms.py
holds it to jsonschema's verdict on every one-edit mutation of real specs). On
False, the loader asks jsonschema, which finds and positions the errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["conforms"]

# id(schema) -> (schema, its validator): the schema is kept, so its id is never reused.
_VALIDATORS: dict[int, tuple[dict[str, Any], Callable[[Any], Any]]] = {}


def conforms(instance: Any, schema: dict[str, Any]) -> bool:
    """Whether `instance` is valid against `schema`."""
    import fastjsonschema

    entry = _VALIDATORS.get(id(schema))
    if entry is None or entry[0] is not schema:
        # use_default=False: validating must not fill defaults into the document.
        entry = _VALIDATORS[id(schema)] = (schema, fastjsonschema.compile(
            schema, use_default=False, use_formats=False, detailed_exceptions=False))
    try:
        entry[1](instance)
    except fastjsonschema.JsonSchemaException:
        return False
    return True
