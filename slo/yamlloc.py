"""A YAML loader that remembers line numbers, so spec errors can name file and line.

Mappings load as `LocDict` and sequences as `LocList`; both are plain dict/list subclasses that
also carry the line of each key or item. Duplicate keys are an error (PyYAML keeps the last one
silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


class YamlError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class LocDict(dict[Any, Any]):
    """A dict with `line` (where it starts) and `key_lines` (line of each key)."""

    line: int = 0
    key_lines: dict[Any, int]


class LocList(list[Any]):
    """A list with `line` (where it starts) and `item_lines` (line of each item)."""

    line: int = 0
    item_lines: list[int]


def load_documents(text: str) -> list[Any]:
    """Every YAML document in `text`, with line numbers attached; empty documents are skipped."""
    loader = yaml.SafeLoader(text)
    docs = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(_build(loader, node))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise YamlError(mark.line + 1 if mark else 0, f"invalid YAML: {e.problem or e}") from None
    finally:
        loader.dispose()
    return docs


def _build(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out = LocDict()
        out.line, out.key_lines = node.start_mark.line + 1, {}
        for k_node, v_node in node.value:
            key = loader.construct_object(k_node, deep=True)
            if isinstance(key, (list, dict)):
                raise YamlError(k_node.start_mark.line + 1, "mapping keys must be scalars")
            if key in out:
                raise YamlError(k_node.start_mark.line + 1, f"duplicate key {key!r}")
            out[key] = _build(loader, v_node)
            out.key_lines[key] = k_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LocList(_build(loader, n) for n in node.value)
        seq.line, seq.item_lines = node.start_mark.line + 1, [n.start_mark.line + 1 for n in node.value]
        return seq
    return loader.construct_object(node, deep=True)


def line_at(doc: Any, path: Sequence[Any], default: int = 0) -> int:
    """Line of the deepest element of `path` (keys and indexes) that exists in `doc`."""
    line = getattr(doc, "line", default) or default
    cur = doc
    for key in path:
        if isinstance(cur, LocDict) and key in cur:
            line, cur = cur.key_lines[key], cur[key]
        elif isinstance(cur, LocList) and isinstance(key, int) and 0 <= key < len(cur):
            line, cur = cur.item_lines[key], cur[key]
        else:
            break
    return line
