"""Redaction by construction: the Secret type, and messages that never echo a secret."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from bootstrap.config import Settings
from bootstrap.errors import ConfigErrors
from bootstrap.gitlab import GitLab
from bootstrap.inputs import gitlab_token, load_credentials
from bootstrap.render.credentials import Credentials
from bootstrap.secret import Environ, Secret, is_secret_key, without_userinfo
from tests.conftest import EXTRA_SECRETS, run_cli

PASSWORD = "correct horse battery staple!"
NAMELIKE_PASSWORD = "Tr0ub4dor3xKeyboard"


def test_a_secret_never_shows_its_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(PASSWORD)
    logging.getLogger("test").warning("value %s %r", secret, secret)
    shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", f"{secret:>40}", str([secret])]
    shown.append(repr(Credentials(runner_token=Secret(PASSWORD), registry_password=secret)))
    shown.append(caplog.records[0].getMessage())
    for text in shown:
        assert PASSWORD not in text
    assert secret.reveal() == PASSWORD
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]


def test_credentials_wrap_plain_strings() -> None:
    creds = Credentials(runner_token="glrt-x", registry_password=PASSWORD)  # type: ignore[arg-type]
    assert isinstance(creds.registry_password, Secret)
    assert f"{creds.registry_password}" == "(secret)"
    assert creds.secret_values() == ["glrt-x", PASSWORD]


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("registry.password_env", True),
        ("registry.password_file", True),
        ("cache.s3_secret_key_env", True),
        ("cache.s3_access_key_env", True),
        ("git_ssh.private_key_file", True),
        ("kubernetes.key_file", True),
        ("gitlab.token", True),
        ("gitlab.ca_file", False),
        ("git_ssh.known_hosts_file", False),
        ("registry.existing_secret", False),
        ("kubernetes.namespace", False),
    ],
)
def test_which_keys_hold_secrets(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("https://user:pa55@gitlab.example.com/x", "https://gitlab.example.com/x"),
        ("https://tok@gitlab.example.com:8443", "https://gitlab.example.com:8443"),
        ("https://gitlab.example.com", "https://gitlab.example.com"),
        ("http://a:b@[::1", "[::1"),  # unparsable: everything up to the last '@' goes
    ],
)
def test_urls_are_printed_without_userinfo(url: str, printed: str) -> None:
    assert without_userinfo(url) == printed


def _render(workdir: Path, config: str) -> str:
    (workdir / "bootstrap.toml").write_text(config)
    result = run_cli(["render", "--group", "g"])
    assert result.exit_code == 2, result.output
    return result.output


def test_a_password_typed_into_a_star_env_key_is_not_echoed(workdir: Path) -> None:
    EXTRA_SECRETS.append(PASSWORD)
    output = _render(
        workdir,
        f'[registry]\nserver = "r.example.com"\nusername = "u"\npassword_env = "{PASSWORD}"\n',
    )
    assert "registry.password_env" in output
    assert "not an environment variable name" in output
    assert "not shown" in output


def test_an_array_of_registry_tables_is_refused_without_printing_it(workdir: Path) -> None:
    EXTRA_SECRETS.append(PASSWORD)
    output = _render(
        workdir,
        f'[[registry]]\nserver = "r.example.com"\nusername = "u"\npassword = "{PASSWORD}"\n',
    )
    assert "registry.password: never write the password in the file" in output
    assert "registry: a list (not shown) is invalid" in output
    assert "server" not in output, "the table is not printed"


def test_a_name_like_password_in_a_star_env_key_is_not_echoed_when_unset(tmp_path: Path) -> None:
    EXTRA_SECRETS.append(NAMELIKE_PASSWORD)
    settings = Settings.model_validate(
        {
            "gitlab": {"group": "g"},
            "registry": {
                "server": "r.example.com",
                "username": "u",
                "password_env": NAMELIKE_PASSWORD,
            },
            "git_ssh": {"private_key_file": PASSWORD, "known_hosts_file": str(tmp_path / "kh")},
        }
    )
    with pytest.raises(ConfigErrors) as caught:
        load_credentials(settings, {}, "glrt-x")
    message = str(caught.value)
    assert "registry.password_env: the environment variable the value (not shown" in message
    assert "git_ssh.private_key_file: the value (not shown" in message
    assert f"{tmp_path}/kh: no such file" in message, "a path that is only a path is shown"
    assert NAMELIKE_PASSWORD not in message
    assert PASSWORD not in message


def test_a_token_pasted_into_a_public_file_key_is_not_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gitlab.ca_file points at a public CA bundle, so its path is shown; a bare word there is
    # no path, and may be the token pasted into the wrong key (found by scripts/fuzz).
    EXTRA_SECRETS.append(NAMELIKE_PASSWORD)
    monkeypatch.chdir(tmp_path)
    messages = []
    routable = "glpat-Tr0ub4dor3xKeyboard0123.01.0j0sd8ta"  # a routable token: it has dots
    EXTRA_SECRETS.append(routable)
    for ca_file in (NAMELIKE_PASSWORD, routable, "ca.pem", str(tmp_path / "ca.pem")):
        settings = Settings.model_validate({"gitlab": {"group": "g", "ca_file": ca_file}})
        with pytest.raises(ConfigErrors) as caught:
            load_credentials(settings, {}, "glrt-x")
        messages.append(str(caught.value))
    hidden, token, bare_name, path = messages
    assert "gitlab.ca_file: the value (not shown: gitlab.ca_file names a file" in hidden
    assert NAMELIKE_PASSWORD not in hidden
    assert "not shown" in token
    assert routable not in token
    assert "gitlab.ca_file: ca.pem: no such file" in bare_name
    assert f"gitlab.ca_file: {tmp_path}/ca.pem: no such file" in path


def test_a_variable_name_is_still_shown(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "gitlab": {"group": "g"},
            "registry": {"server": "r.example.com", "username": "u", "password_env": "REG_PW"},
        }
    )
    with pytest.raises(ConfigErrors, match="the environment variable REG_PW is not set"):
        load_credentials(settings, {}, "glrt-x")


TOKEN = "glpat-0123456789abcdefghij"


def test_gitlab_token_is_read_as_a_secret() -> None:
    token = gitlab_token({"GITLAB_TOKEN": TOKEN})
    assert isinstance(token, Secret)
    assert token.reveal() == TOKEN
    assert TOKEN not in f"{token} {token!r} {[token]}"


def test_the_environment_handed_to_workflows_shows_no_value() -> None:
    environ = Environ({"GITLAB_TOKEN": TOKEN, "HOME": "/root"})
    assert environ["GITLAB_TOKEN"] == TOKEN
    assert dict(environ)["HOME"] == "/root"
    assert repr(environ) == "Environ(2 variables, values not shown)"
    assert TOKEN not in f"{environ} {[environ]}"
    with pytest.raises(TypeError):
        pickle.dumps(environ)


def test_the_gitlab_connection_refuses_a_plain_str_token() -> None:
    with pytest.raises(TypeError, match="token must be a Secret"):
        GitLab("https://gitlab.example.com", TOKEN)  # type: ignore[arg-type]
    gl = GitLab("https://gitlab.example.com", Secret(TOKEN))
    with pytest.raises(TypeError, match="token must be a Secret"):
        gl.switch_token(TOKEN)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="the value of GITLAB_TOKEN must be a Secret"):
        gl.set_secret_variable(1, "GITLAB_TOKEN", TOKEN, exists=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be a Secret"):
        gl.verify_token(TOKEN, "s_0123456789ab")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="current must be a Secret"):
        gl.reset_token_with_token(1, TOKEN, "s_0123456789ab")  # type: ignore[arg-type]
    assert gl.calls.as_dict() == {"reads": 0, "writes": 0}, "refused before any request"


#: Each line hands a plain str where the library takes a Secret; mypy must refuse every one.
_PLAIN_STR_CALLS = """\
from bootstrap.config import Settings
from bootstrap.gitlab import GitLab, NewToken
from bootstrap.install import install
from bootstrap.render.runner_config import replace_token
from bootstrap.report import QuietReporter
from bootstrap.rotate import rotate
from bootstrap.secret import Secret
from bootstrap.status import status
from bootstrap.uninstall import uninstall
from bootstrap.workflow import connect

settings = Settings.model_validate({"gitlab": {"group": "g"}})
token = "glpat-a-plain-string-token"
gl = GitLab("https://gitlab.example.com", token)  # E
gl.switch_token(token)  # E
gl.set_secret_variable(1, "GITLAB_TOKEN", token, exists=False)  # E
gl.verify_token(token, "s_0123456789ab")  # E
gl.reset_token_with_token(1, token, "s_0123456789ab")  # E
NewToken(1, token, None)  # E
replace_token("", token)  # E
connect(settings, token, reporter=QuietReporter())  # E
install(settings, token=token, environ={})  # E
rotate(settings, token=token)  # E
status(settings, token=token, environ={})  # E
uninstall(settings, token=token)  # E
GitLab("https://gitlab.example.com", Secret(token))  # fine
"""


def test_mypy_refuses_a_plain_str_where_a_secret_is_expected(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(_PLAIN_STR_CALLS)
    config = Path(__file__).parents[2] / "pyproject.toml"
    out, err, _code = api.run(
        ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    flagged = {int(line.split(":")[1]) for line in out.splitlines() if "error:" in line}
    lines = _PLAIN_STR_CALLS.splitlines()
    expected = {i for i, line in enumerate(lines, 1) if line.endswith("# E")}
    assert flagged == expected, out + err
    assert all('expected "Secret"' in line for line in out.splitlines() if "error:" in line)
