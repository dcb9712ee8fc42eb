"""Validators for OpenAI's published OpenAPI document (`../shared/data/openai-openapi/`).

The document says OpenAPI 3.1 (JSON Schema 2020-12) but marks nullable fields with 3.0's
`nullable: true`, which a 2020-12 validator ignores; each such schema is rewritten to also
admit null, so that a required-but-null field validates as OpenAI means it to."""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from jsonschema import Draft202012Validator

from tests.servers import ROOT

DOCUMENT = ROOT.parent / "shared" / "data" / "openai-openapi" / "openapi.json"
# The document has no schema for a streamed legacy completion, whose chunks OpenAI's API sends
# as completions with `finish_reason: null` until the last: this one is that, and nothing more.
COMPLETION_CHUNK = "CreateCompletionResponse chunk"


def _admit_null(node: Any) -> Any:
    if isinstance(node, list):
        return [_admit_null(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _admit_null(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _components() -> dict[str, Any]:
    components = _admit_null(json.loads(DOCUMENT.read_text())["components"])
    chunk = copy.deepcopy(components["schemas"]["CreateCompletionResponse"])
    reason = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
    chunk["properties"]["choices"]["items"]["properties"]["finish_reason"] = {"anyOf": [reason, {"type": "null"}]}
    components["schemas"][COMPLETION_CHUNK] = chunk
    return components


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    """A validator of `components/schemas/<schema>`, its `$ref`s resolved in the document."""
    components = _components()
    if schema not in components["schemas"]:
        raise KeyError(f"no schema {schema!r} in {DOCUMENT}")
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": components})


def problems(schema: str, body: Any) -> list[str]:
    """Every way `body` breaks `schema`, as 'path: message' lines (empty when it validates)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}"
        for e in sorted(validator(schema).iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]
