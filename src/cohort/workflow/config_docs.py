"""The config's documentation, from one source: the `description` of each key in
config/config.schema.yaml. From it come docs/configuration.md (every key, its type and allowed
values) and the leading comment of each key in config/config.yaml; `python -m cohort config-docs`
rewrites both and a test fails when either differs from what the schema gives.

In config.yaml a key's comment block is the schema's description, then (after a line holding
only `#`) notes on this study's value: its source, or why it is an ASSUMPTION. Only the notes are
written by hand.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

NAME = "<name>"  # a key the user names (an outcome)
ITEM = "[]"  # an entry of a list (an occasion, a Table 2 row)
WIDTH = 100


def _children(node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The documented sub-keys of a schema node: properties, named keys, list entries, and the
    properties of each alternative of a oneOf/anyOf."""
    out = list(node.get("properties", {}).items())
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and ("properties" in extra or "additionalProperties" in extra):
        out.append((NAME, extra))
    items = node.get("items")
    if isinstance(items, dict) and "properties" in items:
        out.append((ITEM, items))
    for alternative in node.get("oneOf", []) + node.get("anyOf", []):
        out += list(alternative.get("properties", {}).items())
    return out


def schema_keys(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """Every key of the schema, depth first: (dotted path, its schema node, required)."""
    out: list[tuple[str, dict[str, Any], bool]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        required = set(node.get("required", []))
        for alternative in node.get("oneOf", []):
            required |= set(alternative.get("required", []))
        seen = set()
        for key, child in _children(node):
            if key in seen:
                continue
            seen.add(key)
            path = f"{prefix}.{key}" if prefix else key
            if key not in (NAME, ITEM):
                out.append((path, child, key in required))
            walk(child, path)

    walk(schema, "")
    return out


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return {**schema["$defs"][ref.removeprefix("#/$defs/")], **node}
    return node


def allowed_values(node: dict[str, Any], schema: dict[str, Any]) -> str:
    """A key's type and allowed values in words: `lower | higher`, `integer >= 1`, ..."""
    node = _resolve(node, schema)
    if "enum" in node:
        return " \\| ".join(f"`{v}`" if v is not None else "`null`" for v in node["enum"])
    for combinator in ("oneOf", "anyOf"):
        if combinator in node:
            parts = []
            for alternative in node[combinator]:
                if "const" in alternative:
                    parts.append(f"`{alternative['const']}`")
                elif "properties" in alternative:
                    parts.append("{" + ", ".join(alternative["properties"]) + "}")
                else:
                    parts.append(allowed_values(alternative, schema))
            return " or ".join(parts)
    kind = node.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(k for k in kinds if k)
    if "items" in node and isinstance(node["items"], dict):
        inner = node["items"]
        text = f"list of {inner.get('type', 'entries') if 'properties' not in inner else 'entries'}"
    bounds = [
        f"{op} {node[key]:g}"
        for key, op in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if key in node
    ]
    if "pattern" in node and "name" in str(node.get("$ref", "")):
        bounds.append("lower-case letters, digits, _")
    return ", ".join([text, *bounds]) if bounds else text


def configuration_markdown(schema: dict[str, Any]) -> str:
    """docs/configuration.md: every key of the config with its type and meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `config/config.schema.yaml` by `python -m cohort config-docs`; do not edit",
        "by hand (a test compares). `<name>` is a key you choose (an outcome's name); `[]` an",
        "entry of a list. A study file (`--configfile`) sets any of these over",
        '`config/config.yaml`; see the README, "Running on a real extract".',
        "",
        "| key | required | values | meaning |",
        "|---|---|---|---|",
    ]
    for path, node, required in schema_keys(schema):
        description = " ".join(str(node.get("description", "")).split())
        lines.append(
            f"| `{path}` | {'yes' if required else ''} | {allowed_values(node, schema)} | "
            f"{description.replace('|', chr(92) + '|')} |"
        )
    return "\n".join(lines) + "\n"


def _comment(text: str, indent: int) -> list[str]:
    prefix = " " * indent + "# "
    return textwrap.wrap(
        " ".join(text.split()),
        width=WIDTH,
        initial_indent=prefix,
        subsequent_indent=prefix,
        break_on_hyphens=False,
    )


KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s|$)")


def commented_config(text: str, schema: dict[str, Any]) -> str:
    """config.yaml with the leading comment of every fixed key (not inside a list or under a
    key the user names) rewritten from the schema's description; the notes after a line of
    only `#` are kept as written."""
    descriptions = {
        path: str(node["description"])
        for path, node, _ in schema_keys(schema)
        if "description" in node and NAME not in path and ITEM not in path
    }
    lines = text.splitlines()
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    for line in lines:
        match = KEY_LINE.match(line)
        if not match:
            out.append(line)
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([*(k for _, k in stack), match["key"]])
        stack.append((indent, match["key"]))
        if path in descriptions:
            start = len(out)
            while start > 0 and out[start - 1].startswith(" " * indent + "#"):
                start -= 1
            block = out[start:]
            separator = next((i for i, b in enumerate(block) if b.strip() == "#"), len(block))
            notes = block[separator:]
            del out[start:]
            out += _comment(descriptions[path], indent) + notes
        out.append(line)
    return "\n".join(out) + "\n"
