"""docs/templates.md says what `bootstrap templates publish` really prints."""

from __future__ import annotations

import re
from pathlib import Path

from bootstrap.publish import include_snippet
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


def test_the_docs_quote_the_version_the_snippet_prints() -> None:
    snippet = include_snippet(make_settings(), "mygroup/ci-templates", "1.0.0")
    versions = set(re.findall(r"@(\S+)", snippet))
    assert versions == {"v1.0.0"}
    page = (REPO / "docs" / "templates.md").read_text(encoding="utf-8")
    assert re.findall(r"prints `@([^`]+)`", page) == ["vX.Y.Z"]
