"""Deployment construction, env-var precedence, secrets, and the YAML loader's error messages."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from compare.deployments import DEFAULT_API_VERSION, Deployment
from compare.deployments_file import load_deployments, local_deployments
from compare.errors import ConfigError, CredentialError

ENV_VARS = (
    "AZURE_AI_CHAT_ENDPOINT",
    "AZURE_AI_CHAT_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "OPENAI_API_VERSION",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "MY_KEY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def write(tmp_path: Path, text: str, name: str = "deployments.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# -- Deployment ----------------------------------------------------------------------------------


def test_defaults_and_service_name() -> None:
    d = Deployment(name="a", endpoint="https://x.example/models/")
    assert d.kind == "azure-inference"
    assert d.deployment == "a"
    assert d.endpoint == "https://x.example/models"  # trailing slash dropped
    assert d.api_version == DEFAULT_API_VERSION["azure-inference"]
    assert d.auth == "key"
    e = Deployment(name="shown", deployment="Phi-4", endpoint="https://x.example")
    assert e.deployment == "Phi-4"


def test_key_never_in_repr_or_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-very-secret-123"
    d = Deployment(name="a", endpoint="https://x.example", api_key=secret)
    assert secret not in repr(d)
    assert secret not in json.dumps(d.to_dict())
    assert "api_key" not in d.to_dict()
    assert d.resolve_api_key() == secret
    monkeypatch.setenv("AZURE_AI_CHAT_KEY", "env-secret")
    e = Deployment(name="b", endpoint="https://x.example")
    assert "env-secret" not in repr(e) and "env-secret" not in json.dumps(e.to_dict())


def test_key_precedence_argument_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AI_CHAT_KEY", "from-env")
    assert Deployment(name="a", endpoint="https://x").resolve_api_key() == "from-env"
    assert Deployment(name="a", endpoint="https://x", api_key="arg").resolve_api_key() == "arg"
    monkeypatch.setenv("MY_KEY", "mine")
    d = Deployment(name="a", endpoint="https://x", api_key_env="MY_KEY")
    assert d.resolve_api_key() == "mine"
    assert d.key_env == "MY_KEY"


@pytest.mark.parametrize(
    ("kind", "var"),
    [
        ("azure-inference", "AZURE_AI_CHAT_KEY"),
        ("azure-openai", "AZURE_OPENAI_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
    ],
)
def test_missing_key_names_argument_and_variable(kind: str, var: str) -> None:
    d = Deployment(name="a", endpoint="https://x", kind=kind)
    with pytest.raises(CredentialError) as info:
        d.resolve_api_key()
    message = str(info.value)
    assert "api_key" in message and var in message
    assert info.value.field == "api_key"


@pytest.mark.parametrize(
    ("kind", "var"),
    [
        ("azure-inference", "AZURE_AI_CHAT_ENDPOINT"),
        ("azure-openai", "AZURE_OPENAI_ENDPOINT"),
        ("openai", "OPENAI_BASE_URL"),
    ],
)
def test_endpoint_from_env_and_error_names_both(
    monkeypatch: pytest.MonkeyPatch, kind: str, var: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Deployment(name="a", kind=kind)
    assert "endpoint" in str(info.value) and var in str(info.value)
    monkeypatch.setenv(var, "https://from-env.example/")
    assert Deployment(name="a", kind=kind).endpoint == "https://from-env.example"
    # The argument wins over the variable.
    assert Deployment(name="a", kind=kind, endpoint="https://arg").endpoint == "https://arg"


def test_api_version_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Deployment(name="a", kind="azure-openai", endpoint="https://x")
    assert d.api_version == DEFAULT_API_VERSION["azure-openai"]
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01-preview")
    assert Deployment(name="a", kind="azure-openai", endpoint="https://x").api_version == (
        "2025-01-01-preview"
    )
    explicit = Deployment(name="a", kind="azure-openai", endpoint="https://x", api_version="v9")
    assert explicit.api_version == "v9"
    # The variable is Azure OpenAI's convention only.
    assert Deployment(name="a", endpoint="https://x").api_version == "2024-05-01-preview"
    assert Deployment(name="a", kind="openai", endpoint="https://x").api_version is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "azure"}, "kind"),
        ({"auth": "token"}, "auth"),
        ({"extra_parameters": "allow"}, "extra_parameters"),
        ({"temperature": 3}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2.5}, "max_tokens"),
        ({"seed": "x"}, "seed"),
        ({"concurrency": True}, "concurrency"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"read_timeout_s": -1}, "read_timeout_s"),
        ({"read_timeout_s": None}, "read_timeout_s"),  # no timeout: a hung server hangs the run
        ({"connect_timeout_s": None}, "connect_timeout_s"),
        ({"stop": [1]}, "stop"),
        ({"labels": ["a"]}, "labels"),
        ({"name": ""}, "name"),
        ({"endpoint": "ftp://x"}, "endpoint"),
        ({"auth": "entra", "api_key": "k"}, "auth"),
        ({"price_input_per_1k": -1}, "price_input_per_1k"),
    ],
)
def test_invalid_fields_rejected(changes: dict, field: str) -> None:
    values = {"name": "a", "endpoint": "https://x", **changes}
    with pytest.raises(ConfigError) as info:
        Deployment(**values)
    assert info.value.field == field


def test_choice_error_hints() -> None:
    with pytest.raises(ConfigError, match="did you mean 'azure-openai'"):
        Deployment(name="a", endpoint="https://x", kind="azure-opnai")


def test_stop_normalised_defaults_and_replace() -> None:
    d = Deployment(
        name="a", endpoint="https://x", stop="END", temperature=0, seed=3, extra={"k": 1}
    )
    assert d.stop == ("END",)
    assert d.defaults() == {"temperature": 0, "seed": 3, "stop": ["END"], "extra": {"k": 1}}
    e = d.replace(temperature=0.5)
    assert e.temperature == 0.5 and d.temperature == 0
    with pytest.raises(ConfigError):
        d.replace(temperature=9)
    assert hash(d) == hash(d.replace())  # usable as a dict key despite dict fields
    assert d.to_dict()["stop"] == ["END"]


# -- load_deployments ----------------------------------------------------------------------------


def test_load_valid_file_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          endpoint: https://res.services.ai.azure.com/models
          temperature: 0
        deployments:
          - name: a
            labels: {model: m1, capacity_type: standard}
            price_input_per_1k: 0.001
          - name: b
            temperature: 0.7
            stop: [END, STOP]
          - name: c
            kind: openai
            endpoint: http://127.0.0.1:9/openai/v1
            deployment: real-c
        """,
    )
    a, b, c = load_deployments(path)
    assert (a.name, a.temperature, a.labels["model"]) == ("a", 0, "m1")
    assert a.endpoint == "https://res.services.ai.azure.com/models"
    assert b.temperature == 0.7 and b.stop == ("END", "STOP")
    assert (c.kind, c.deployment, c.endpoint) == (
        "openai",
        "real-c",
        "http://127.0.0.1:9/openai/v1",
    )


def test_top_level_list_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "- name: a\n  endpoint: https://x\n")
    assert [d.name for d in load_deployments(path)] == ["a"]


@pytest.mark.parametrize(
    ("text", "line", "field", "needle"),
    [
        (
            """
            deployments:
              - name: a
                endpoint: https://x
                temprature: 0.5
            """,
            4,
            "temprature",
            "did you mean 'temperature'",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: https://x
                temperature: 5
            """,
            4,
            "temperature",
            "temperature must be a number",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: https://x
              - name: b
                endpoint: https://x
                kind: azure-opnai
            """,
            6,
            "kind",
            "did you mean 'azure-openai'",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: https://x
              - name: a
                endpoint: https://y
            """,
            4,
            "name",
            "duplicate deployment name 'a' (first on line 2)",
        ),
        (
            """
            deployment:
              - name: a
            """,
            1,
            "deployment",
            "did you mean 'deployments'",
        ),
        (
            """
            defaults:
              endpoint: https://x
            """,
            1,
            "deployments",
            "missing the `deployments:` list",
        ),
        (
            """
            defaults:
              name: shared
            deployments:
              - name: a
                endpoint: https://x
            """,
            2,
            "name",
            "unknown key 'name'",
        ),
        (
            """
            deployments:
              - endpoint: https://x
            """,
            2,
            "name",
            "missing required key 'name'",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: https://x
                endpoint: https://y
            """,
            4,
            "endpoint",
            "duplicate key 'endpoint' (first on line 3)",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: https://x
                max_tokens: many
            """,
            4,
            "max_tokens",
            "positive integer",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: https://x
                labels: [x]
            """,
            4,
            "labels",
            "labels must be a mapping",
        ),
        (
            """
            deployments: []
            """,
            1,
            None,
            "non-empty list",
        ),
        (
            """
            deployments:
              - just-a-string
            """,
            2,
            None,
            "must be a mapping",
        ),
        (
            """
            deployments:
              - name: a
                endpoint: [unclosed
            """,
            4,
            None,
            "not valid YAML",
        ),
    ],
)
def test_bad_files_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, needle: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_deployments(path)
    err = info.value
    assert err.source == str(path)
    assert err.line == line, str(err)
    assert err.field == field
    assert needle in str(err)
    assert str(err).startswith(f"{path}:{line}: ")


def test_missing_endpoint_in_file_names_env_var(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments:\n  - name: a\n    kind: azure-openai\n")
    with pytest.raises(ConfigError) as info:
        load_deployments(path)
    assert info.value.line == 2
    assert "AZURE_OPENAI_ENDPOINT" in str(info.value)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        load_deployments(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="cannot read"):
        load_deployments(tmp_path / "nope.yaml")


def test_key_in_file_never_in_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        deployments:
          - name: a
            endpoint: https://x
            api_key: sk-file-secret
            temperature: 9
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_deployments(path)
    assert "sk-file-secret" not in str(info.value)


def test_shipped_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import compare

    example = Path(compare.__file__).parent / "data" / "deployments.example.yaml"
    deps = load_deployments(example)
    names = [d.name for d in deps]
    assert len(names) == len(set(names)) >= 5
    assert {d.kind for d in deps} == {"azure-inference", "azure-openai", "openai"}
    assert any(d.auth == "entra" for d in deps)
    phi = next(d for d in deps if d.name == "phi-4")
    assert phi.deployment == "Phi-4" and phi.extra_parameters == "pass-through"
    assert all(d.temperature == 0 for d in deps)  # from `defaults:`


# -- local_deployments ---------------------------------------------------------------------------


def fake_local() -> SimpleNamespace:
    # The documented duck type of a LocalEndpoint (.url, .api_key, .deployment_names).
    return SimpleNamespace(
        url="http://127.0.0.1:5555", api_key="local-key", deployment_names=["sim-fast", "smollm2"]
    )


def test_local_deployments_per_kind() -> None:
    local = fake_local()
    inf = local_deployments(local)
    assert [d.name for d in inf] == ["sim-fast", "smollm2"]
    assert inf[0].endpoint == "http://127.0.0.1:5555" and inf[0].resolve_api_key() == "local-key"
    v1 = local_deployments(local, kind="openai", names=["smollm2"], temperature=0)
    assert v1[0].endpoint == "http://127.0.0.1:5555/openai/v1" and v1[0].temperature == 0
    labelled = local_deployments(local, labels={"model": "m"})
    assert labelled[0].labels == {"endpoint": "local", "model": "m"}
    aoai = local_deployments(local, kind="azure-openai")
    assert aoai[0].kind == "azure-openai" and aoai[0].endpoint == "http://127.0.0.1:5555"
    # One name as a plain string is that name (it used to be split into characters).
    assert [d.name for d in local_deployments(local, names="smollm2")] == ["smollm2"]


def test_local_deployments_unknown_name_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'smollm2'"):
        local_deployments(fake_local(), names=["smollm"])


HOSTILE_FILES = {
    "control-character": (b"deployments:\n  - name: a\x1f\n", 2, "character '\\x1f'"),
    "latin-1": (b"deployments:\n  - name: caf\xe9\n", 2, "not UTF-8"),
    "deep": (b"[" * 5000 + b"]" * 5000, None, "nested too deeply"),
    "deep-value": (
        b"deployments:\n  - name: a\n    extra: {v: " + b"[" * 3000 + b"]" * 3000 + b"}\n",
        None,
        "nested too deeply",
    ),
    "huge-int": (b"deployments:\n  - name: a\n    extra: {v: " + b"9" * 5000 + b"}\n", 3, "4300"),
    "bad-date": (b"deployments:\n  - name: a\n    labels: {v: 2020-13-45}\n", 3, "month"),
    "bad-datetime": (b"deployments:\n  - name: a\n\n    seed: 2020-13-45 10:00:00\n", 4, "month"),
    "int-beyond-float": (
        b"deployments:\n  - name: a\n    endpoint: https://x\n    top_p: " + b"9" * 400 + b"\n",
        4,
        "top_p must be a number in [0, 1], got 999",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_hostile_files_are_config_errors(tmp_path: Path, name: str) -> None:
    # PyYAML's reader, composer and constructors raise ReaderError, RecursionError, ValueError;
    # none of them may escape: one ConfigError naming the file (and the line when known).
    content, line, needle = HOSTILE_FILES[name]
    path = tmp_path / "deployments.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_deployments(path)
    err = info.value
    assert (err.source, err.line) == (str(path), line), str(err)
    assert needle in str(err)
    assert len(str(err)) < 300 and "\n" not in str(err)


def test_malformed_key_is_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments:\n  - name: a\n    endpoint: https://x\n    api_key: 735\n")
    with pytest.raises(ConfigError, match="api_key must be a non-empty string, got int") as info:
        load_deployments(path)
    assert "735" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://[bad", "not a valid URL"),
        ("http://127.0.0.1:99999", "Port out of range"),
        ("http://", "no host name"),
        ("https://x y.example", "spaces or control characters"),
        ("https://x.example/\x00", "spaces or control characters"),
        ("https://x.example/models?api-version=1", "without '?' or '#'"),
        ("https://x.example/#frag", "without '?' or '#'"),
    ],
)
def test_malformed_endpoint_urls_are_config_errors(url: str, needle: str) -> None:
    # Without this, each SDK failed its own way at the first request (ValueError, httpx
    # InvalidURL, an ExceptionGroup for the port), none of them an EndpointError.
    with pytest.raises(ConfigError, match=re.escape(needle)) as info:
        Deployment(name="a", endpoint=url, api_key="k")
    assert info.value.field == "endpoint"


@pytest.mark.parametrize(
    "url", ["https://user:s3cret@x.example/?q", "https://user:s3cret@x.example", "https://s3cret@x"]
)
def test_endpoint_with_credentials_is_rejected_and_not_echoed(url: str) -> None:
    # It would have been stored with the deployment: to_dict() -> manifests and frames.
    with pytest.raises(ConfigError) as info:
        Deployment(name="a", endpoint=url, api_key="k")
    assert "s3cret" not in str(info.value) and info.value.field == "endpoint"


@pytest.mark.parametrize("name", ["a b", "a/b", "..", ".", "a?b", "a#b", "a%2Fb"])
def test_azure_openai_deployment_names_that_break_the_url_path(name: str) -> None:
    with pytest.raises(ConfigError, match="URL path") as info:
        Deployment(name="a", deployment=name, endpoint="https://x", kind="azure-openai")
    assert info.value.field == "deployment"
    # Elsewhere the name is the body's `model`: slashes are normal there (org/model).
    assert Deployment(name="a", deployment=name, endpoint="https://x", kind="openai")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"extra": {"x": {1, 2}}}, "extra"),
        ({"extra": {"x": float("nan")}}, "extra"),
        ({"labels": {"x": object()}}, "labels"),
    ],
)
def test_extra_and_labels_must_be_json(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"{field} must hold JSON values") as info:
        Deployment(name="a", endpoint="https://x", **changes)
    assert info.value.field == field


def test_nan_in_yaml_extra_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "deployments:\n  - name: a\n    endpoint: https://x\n    extra: {t: .nan}\n"
    )
    with pytest.raises(ConfigError, match="extra must hold JSON values") as info:
        load_deployments(path)
    assert info.value.line == 4


@pytest.mark.parametrize(
    "key", ["sk-k\u00e9y", "sk key", "sk-key\n", "sk-\x01", "\u201csk-key\u201d"]
)
def test_keys_an_http_header_cannot_carry(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    # The SDKs raised UnicodeEncodeError (holding the key in its arguments) or a protocol error.
    with pytest.raises(CredentialError, match="from the api_key argument") as info:
        Deployment(name="a", endpoint="https://x", api_key=key).resolve_api_key()
    assert key.strip() not in str(info.value) and info.value.field == "api_key"
    monkeypatch.setenv("MY_KEY", key)
    with pytest.raises(CredentialError, match="environment variable MY_KEY") as info:
        Deployment(name="a", endpoint="https://x", api_key_env="MY_KEY").resolve_api_key()
    assert key.strip() not in str(info.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"api_version": "v\ud800"}, "api_version"),
        ({"system": "\udc00"}, "system"),
        ({"labels": {"m": "\ud800"}}, "labels"),
    ],
)
def test_lone_surrogates_in_deployments_are_config_errors(changes: dict, field: str) -> None:
    changes = {"name": "a", **changes}
    with pytest.raises(ConfigError, match="lone surrogate") as info:
        Deployment(endpoint="https://x", **changes)
    assert info.value.field == field


def test_lone_surrogate_escape_in_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'deployments:\n  - name: a\n    endpoint: https://x\n    system: "\\ud800"\n'
    )
    with pytest.raises(ConfigError, match="lone surrogate") as info:
        load_deployments(path)
    assert info.value.line == 4


@pytest.mark.parametrize("field", ["name", "deployment"])
@pytest.mark.parametrize("value", ["a\nb", "a\tb", "a\x1b[2J", "a\ud800"])
def test_names_with_control_characters_are_rejected(field: str, value: str) -> None:
    changes = {"name": "a", field: value}
    with pytest.raises(ConfigError, match="control characters") as info:
        Deployment(endpoint="https://x", **changes)
    assert info.value.field == field


def test_escape_sequence_in_a_yaml_name_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'deployments:\n  - endpoint: https://x\n    name: "a\\e[2J"\n')
    with pytest.raises(ConfigError, match="control characters") as info:
        load_deployments(path)
    assert (info.value.line, info.value.field) == (3, "name")


def test_billion_laughs_is_rejected_quickly(tmp_path: Path) -> None:
    # Nine lines of aliases expand to 9^9 values: validating or serialising them ran out of
    # memory (MemoryError after ~40 s under a 4 GB limit).
    lines = ['    a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    text = "defaults:\n  extra:\n" + "\n".join(lines) + "\ndeployments:\n  - name: a\n"
    path = tmp_path / "deployments.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="expands to more than 100000 values") as info:
        load_deployments(path)
    assert info.value.source == str(path) and info.value.line is not None


def test_self_referencing_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "deployments:\n  - &x\n    name: a\n    extra: {me: *x}\n")
    with pytest.raises(ConfigError, match="alias refers to itself"):
        load_deployments(path)


def test_ordinary_aliases_still_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        deployments:
          - name: a
            endpoint: https://x
            labels: &l {model: m, capacity_type: standard}
          - name: b
            endpoint: https://x
            labels: *l
        """,
    )
    a, b = load_deployments(path)
    assert a.labels == b.labels == {"model": "m", "capacity_type": "standard"}


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"messages": [{"role": "user", "content": "other"}]}, "must not set messages"),
        ({"model": "other", "stream": False}, "must not set model, stream"),
        ({"temperature": 1.5}, "set temperature as a field"),
    ],
)
def test_extra_cannot_replace_what_the_comparison_sets(extra: dict, needle: str) -> None:
    # Adapters merge `extra` into the body last: it silently replaced the prompt or streaming.
    with pytest.raises(ConfigError, match=needle) as info:
        Deployment(name="a", endpoint="https://x", extra=extra)
    assert info.value.field == "extra"
    # A service-specific key (documented in deployments.example.yaml) stays allowed.
    assert Deployment(name="a", endpoint="https://x", extra={"stream_options": {}}).extra


def test_unquoted_dates_are_text(tmp_path: Path) -> None:
    # YAML 1.1 reads 2024-10-21 as a date: `api_version` was rejected as "not a string" and a
    # date label failed JSON. They are kept as written; invalid dates still fail (with a line).
    path = write(
        tmp_path,
        """
        deployments:
          - name: a
            endpoint: https://x
            kind: azure-openai
            api_version: 2024-10-21
            labels: {version: 2024-08-06, at: 2024-08-06 10:00:00}
        """,
    )
    (d,) = load_deployments(path)
    assert d.api_version == "2024-10-21"
    assert d.labels == {"version": "2024-08-06", "at": "2024-08-06 10:00:00"}


def test_deployments_may_map_names_to_settings(tmp_path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("defaults: {endpoint: https://x.services.ai.azure.com/models}\n"
                    "deployments:\n  gpt-4o:\n    temperature: 0\n  phi:\n  bad:\n"
                    "    temperature: 9\n")
    with pytest.raises(ConfigError) as info:
        load_deployments(path)
    assert str(info.value) == f"{path}:7: temperature must be a number in [0, 2], got 9"
    path.write_text("defaults: {endpoint: https://x.services.ai.azure.com/models}\n"
                    "deployments:\n  gpt-4o:\n    temperature: 0\n  phi:\n")
    deps = load_deployments(path)
    assert [(d.name, d.temperature) for d in deps] == [("gpt-4o", 0), ("phi", None)]


def test_a_wrong_deployments_shape_prints_a_corrected_snippet(tmp_path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("deployments: 3\n")
    with pytest.raises(ConfigError) as info:
        load_deployments(path)
    text = str(info.value)
    assert text.startswith(f"{path}:1: `deployments` must be a list of mappings, or a mapping "
                           "of name to settings; for example:\ndeployments:\n  - name: ")
    assert "  gpt-4o-mini: {endpoint: https://RES.services.ai.azure.com/models}" in text
