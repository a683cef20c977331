"""The generated bad-input corpus: strategies for settings files, environments and flags.

Used by tests/unit/test_fuzz.py (offline ``render``) and tests/e2e/test_fuzz_install.py
(``install --dry-run`` against the fakes). The examples mix values that make sense for a key
with values that do not (wrong types, huge numbers, non-ASCII digits, trailing newlines,
symlink-ish paths, overlong names), unknown keys and sections, arrays of tables, and raw
bytes. A secret is planted where secrets go — ``GITLAB_TOKEN``, the password of a URL, the
values of ``*_env``/``*_file``/password keys, the variable a ``*_env`` key names, the
password of a ``[[registry]]`` table — and must never be printed.

``scripts/fuzz`` runs the same tests with many more examples and counts the exit codes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from bootstrap.config import json_schema

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("long", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("BOOTSTRAP_FUZZ_PROFILE", "ci"))

SECRET_KEY = re.compile(r"(_env|_file|password|token)$")  # not existing_secret: a name


@cache
def schema_keys() -> list[tuple[str, str, str, Any]]:
    """(section, key, JSON type, default) of every settings key; section '' for top-level."""
    schema = json_schema()
    keys = []
    for section, body in schema["properties"].items():
        ref = body.get("$ref", "")
        if not ref:
            keys.append(("", section, str(body.get("type", "string")), body.get("default")))
            continue
        for key, prop in schema["$defs"][ref.split("/")[-1]]["properties"].items():
            kind = prop.get("type") or next(
                (a.get("type") for a in prop.get("anyOf", []) if a.get("type") != "null"),
                "string",
            )
            keys.append((section, key, str(kind), prop.get("default")))
    return keys


SPECIAL_STRINGS = [
    "",
    " x ",
    "gitlab-runner\n",
    "v\u0661\u0668.\u0661\u0661.\u0664",  # Arabic-Indic digits
    "\u0661",
    "1e400",
    "-1",
    "99999999999999w",
    "0s",
    "h:abc",
    "a_b.example.com",
    "~/file",
    "../../outside",
    "/dev/null",
    "/proc/self/root/x",
    "x" * 300,
    "a" * 64,
    "$(reboot)",
    "https://user:pw@host",
    "* * * * \u0665",
    "café",
    "\x00",
    "\t",
    "ns/name",
    "Bad_Name",
]


def _plain_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(SPECIAL_STRINGS),
        st.text(max_size=20),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
    )


def values_for(kind: str, default: Any = None) -> st.SearchStrategy[Any]:
    """Values for a key of a JSON type: its default (valid), sensible ones and wrong ones."""
    plain = _plain_values()
    sensible: dict[str, st.SearchStrategy[Any]] = {
        "string": st.sampled_from(SPECIAL_STRINGS) | st.text(max_size=12),
        "integer": st.integers(min_value=-(2**64), max_value=2**64)
        | st.sampled_from([0, 1, 63, 64, 65535, 2**31]),
        "number": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 10**6),
        "boolean": st.booleans(),
        "array": st.lists(plain, max_size=3),
        "object": st.dictionaries(st.text(max_size=8), plain, max_size=2),
    }
    wrong = sensible.get(kind, plain) | plain | st.lists(plain, max_size=2)
    if default is None:
        return wrong
    return st.one_of(st.just(default), st.just(default), st.just(default), wrong)


def toml_value(value: Any) -> str:
    """A TOML literal (an inline table for dicts); lone surrogates make invalid TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(type(value))


@st.composite
def secret(draw: st.DrawFn) -> str:
    """A secret value no output may show (long enough never to occur by chance)."""
    return "pl4nted" + draw(st.text(alphabet="0123456789abcdef", min_size=12, max_size=12))


@st.composite
def settings_file(draw: st.DrawFn, planted: str) -> bytes:
    """A bootstrap.toml: known keys with good or bad values, unknown keys, or raw bytes."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=40))
    chosen = draw(
        st.lists(st.sampled_from(schema_keys()), max_size=5, unique_by=lambda k: (k[0], k[1]))
    )
    top: list[str] = []
    sections: dict[str, list[str]] = {}
    for section, key, kind, default in chosen:
        if SECRET_KEY.search(key) and draw(st.booleans()):
            value: Any = draw(st.sampled_from([planted, f" {planted}", f"{planted}\n"]))
        else:
            value = draw(values_for(kind, default))
        line = f"{key} = {toml_value(value)}"
        (sections.setdefault(section, []) if section else top).append(line)
    if draw(st.integers(0, 4)) == 0:  # an unknown key or section
        name = draw(st.sampled_from(["runer", "gitlab", "registry", "x"]))
        sections.setdefault(name, []).append(f"{draw(st.sampled_from(['concurent', 'y']))} = 1")
    text = "\n".join(top) + "\n"
    for section, lines in sections.items():
        text += f"\n[{section}]\n" + "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:  # an array of tables holding a password
        text += f'\n[[registry]]\nserver = "r.example.com"\npassword = "{planted}"\n'
    return text.encode("utf-8", "surrogatepass")


@st.composite
def environment(draw: st.DrawFn, planted: str) -> dict[str, str]:
    """GITLAB_* and BOOTSTRAP_<SECTION>__<KEY> variables, with a planted secret."""
    env: dict[str, str] = {"GITLAB_TOKEN": draw(st.sampled_from([planted, f"glpat-{planted}"]))}
    url = draw(
        st.sampled_from(["", "https://gitlab.example.com"])
        | st.sampled_from(
            [
                f"https://user:{planted}@gitlab.example.com",
                "gitlab.example.com",
                "http://127.0.0.1:99999",
                "http://exa mple.com",
                "http://:80",
                "ftp://x",
            ]
        )
    )
    if url:
        env["GITLAB_URL"] = url
    for section, key, kind, default in draw(st.lists(st.sampled_from(schema_keys()), max_size=3)):
        if not section:
            continue
        raw = draw(values_for(kind, default))
        text = raw if isinstance(raw, str) else json.dumps(raw)
        if SECRET_KEY.search(key) and draw(st.booleans()):
            text = planted
        env[f"BOOTSTRAP_{section.upper()}__{key.upper()}"] = text
    if draw(st.booleans()):
        env["REGISTRY_PASSWORD"] = planted
        env["BOOTSTRAP_REGISTRY__PASSWORD_ENV"] = "REGISTRY_PASSWORD"
        env.setdefault("BOOTSTRAP_REGISTRY__SERVER", "registry.example.com")
    return {k: v for k, v in env.items() if "\x00" not in v and "\x00" not in k}


def flags() -> st.SearchStrategy[list[str]]:
    """--group / --namespace / --context values, good and bad."""
    group = st.sampled_from(["mygroup", "a/b"]) | st.one_of(
        st.sampled_from(["mygroup/", "", "https://g.example.com/x"]),
        st.text(min_size=1, max_size=15),
    )
    namespace = st.sampled_from(["gitlab-runner", "Bad_NS", "a" * 64, "ns\n"]) | st.text(
        max_size=10
    )
    context = st.none() | st.none() | st.text(max_size=8)
    return st.tuples(group, st.none() | st.none() | namespace, context).map(
        lambda t: (
            ["--group", t[0]]
            + (["--namespace", t[1]] if t[1] is not None else [])
            + (["--context", t[2]] if t[2] is not None else [])
        )
    )


_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{16,}")


def leaks(text: str, planted: str) -> bool:
    """Whether ``planted`` shows in ``text``: raw, or inside any base64 blob decoded."""
    if planted in text:
        return True
    for blob in _BLOB.findall(text):
        for candidate in (blob, blob + "=" * (-len(blob) % 4)):
            try:
                decoded = base64.b64decode(candidate.replace("-", "+").replace("_", "/"))
            except (binascii.Error, ValueError):
                continue
            if planted.encode() in decoded:
                return True
    return False


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (symlinks as their target's name)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_symlink():
            found[str(path.relative_to(root))] = os.readlink(path).encode()
        elif path.is_file():
            found[str(path.relative_to(root))] = path.read_bytes()
    return found
