"""The key reference of docs/configuration.md, generated from the settings model.

``python -m bootstrap.schema_doc`` rewrites docs/bootstrap.schema.json and the part of
docs/configuration.md between the ``keys`` markers; a test checks both are current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bootstrap.config import json_schema

START, END = "<!-- keys:start -->", "<!-- keys:end -->"


def _type(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "object")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if "$ref" in prop:
        return str(prop["$ref"]).split("/")[-1]
    return str(kind)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "(required)"
    value = prop["default"]
    if value in ("", None):
        return "unset"
    return f"`{json.dumps(value)}`"


def reference_markdown() -> str:
    """One table per section: key, type, default, meaning."""
    schema = json_schema()
    defs = schema["$defs"]
    lines: list[str] = []
    top = [(k, p) for k, p in schema["properties"].items() if "$ref" not in p]
    if top:
        lines += ["### Top level", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key, prop in top:
            lines.append(
                f"| `{key}` | {_type(prop)} | {_default(prop)} | {prop.get('description', '')} |"
            )
        lines.append("")
    for section, prop in schema["properties"].items():
        if "$ref" not in prop:
            continue
        model = defs[prop["$ref"].split("/")[-1]]
        lines += [f"### `[{section}]`", "", model.get("description", ""), ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, field in model["properties"].items():
            meaning = field.get("description", "").replace("|", "\\|")
            lines.append(f"| `{section}.{key}` | {_type(field)} | {_default(field)} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def splice(document: str, generated: str) -> str:
    """Replace the text between the markers with ``generated``."""
    head, _, rest = document.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{generated}\n{END}{tail}"


def main(repo: Path) -> None:
    """Regenerate the schema file and the key reference under ``repo/docs``."""
    docs = repo / "docs"
    (docs / "bootstrap.schema.json").write_text(
        json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    )
    guide = docs / "configuration.md"
    guide.write_text(splice(guide.read_text(), reference_markdown()))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
