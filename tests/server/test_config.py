"""The deployments file: the shipped default, and errors that name file, line and field."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from scipy import stats

from compare.errors import ConfigError
from compare.server.config import (
    DEFAULT_DEPLOYMENTS_FILE,
    FAULTS,
    Dist,
    load_config,
    parse_config,
)

BINDING_NAMES = ["smollm2", "smollm2-precise", "gemma3-base", "sim-fast", "sim-slow",
                 "smollm2-batch", "sim-batch", "embed-small"]


def test_shipped_file_has_the_binding_deployments() -> None:
    config = load_config()
    assert config.names() == BINDING_NAMES
    by_name = {d.name: d for d in config.deployments}
    assert by_name["smollm2"].llama.weights == by_name["smollm2-precise"].llama.weights
    assert by_name["smollm2-precise"].llama.deterministic
    assert by_name["smollm2-precise"].defaults["temperature"] == 0
    assert by_name["gemma3-base"].llama.chat_template == "plain"
    slow = by_name["sim-slow"]
    assert slow.content_filter and slow.capacity and slow.capacity.rpm <= 60
    for name in ("sim-fast", "sim-slow", "sim-batch"):
        assert "simulated" in by_name[name].model
    assert {d.name for d in config.deployments if d.is_batch} == {"smollm2-batch", "sim-batch"}
    assert by_name["smollm2-batch"].llama.weights == by_name["smollm2"].llama.weights


def test_only_selects_case_insensitively_and_rejects_unknown() -> None:
    assert load_config(only=["SIM-FAST"]).names() == ["sim-fast"]
    with pytest.raises(ConfigError, match=r"unknown deployment.*nope"):
        load_config(only=["nope"])


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployments.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("deployments:\n  a:\n    backend: simulated\n    colour: red\n", 4, "a.colour: unknown key"),
    ("deployments:\n  a:\n    backend: quantum\n", 3, "'quantum' is not one of"),
    ("deployments:\n  a:\n    backend: simulated\n  a:\n    backend: simulated\n", 4,
     "duplicate key 'a'"),
    ("deployments:\n  a:\n    backend: simulated\n  A:\n    backend: simulated\n", 4,
     "names are case-insensitive"),
    ("deployments:\n  a:\n    backend: simulated\n    faults:\n      - fault: meteor\n", 5,
     "faults[0].fault"),
    ("deployments:\n  a:\n    backend: simulated\n    faults:\n      - {fault: '500', rate: 2}\n",
     5, "out of range"),
    ("deployments:\n  a:\n    backend: simulated\n    faults:\n"
     "      - {fault: '500', rate: 0.1, first_attempts: 2}\n", 5, "not both"),
    ("deployments:\n  a:\n    backend: simulated\n    simulated:\n      ttft_ms: {dist: normal}\n",
     5, "needs 'mean'"),
    ("deployments:\n  a:\n    backend: simulated\n    capacity: {rpm: many}\n", 4,
     "expected an integer"),
    ("deployments:\n  a:\n    backend: simulated\n    content_filter:\n"
     "      - {category: violence}\n", 5, "give terms, regex or both"),
    ("deployments:\n  a:\n    backend: simulated\n    content_filter:\n"
     "      - {category: violence, regex: '(('}\n", 5, "invalid regular expression"),
    ("deployments:\n  a:\n    backend: llama\n    model: m\n", 2, "needs a llama section"),
    ("deployments:\n  a:\n    backend: llama\n    model: m\n    llama: {n_ctx: 512}\n", 5,
     "needs weights"),
    ("deployments:\n  a:\n    backend: simulated\n    defaults: {temperature: 9}\n", 4,
     "temperature"),
    ("deployments:\n  a: [1, 2\n", 3, "not valid YAML"),
    # Scalars PyYAML itself cannot construct (plain ValueErrors inside the loader).
    ("deployments:\n  a:\n    backend: simulated\n    version: " + "9" * 5000 + "\n", 4,
     "cannot read value"),
    ("deployments:\n  a:\n    backend: simulated\n    version: 2020-13-45\n", 4,
     "month must be in 1..12"),
    ("deployments:\n  a: \x1f\n", 2, "is not allowed"),
    ("deployment:\n  a: {}\n", 1, "unknown key"),
    ("deployments:\n  a:\n    backend: llama\n    model: m\n    model_type: embeddings\n", 5,
     "embeddings come from simulated or sentence-transformers deployments"),
])
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message
    assert info.value.line == line and info.value.source == str(path)


def test_non_utf8_file_is_a_config_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "deployments.yaml"
    path.write_bytes(b"deployments:\n  caf\xe9:\n    backend: simulated\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xe9; save the file as UTF-8)"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_dict_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"<config>: deployments\.x\.simulated\.seed"):
        parse_config({"deployments": {"x": {"backend": "simulated",
                                            "simulated": {"seed": "a"}}}})


def test_every_fault_name_is_accepted() -> None:
    config = parse_config({"deployments": {"x": {"backend": "simulated", "faults": [
        {"fault": f, "rate": 0.01} for f in FAULTS]}}})
    assert [r.fault for r in config.deployments[0].faults] == list(FAULTS)


def test_simulated_model_name_always_says_simulated() -> None:
    config = parse_config({"deployments": {"x": {"backend": "simulated", "model": "gpt-4o"}}})
    assert config.deployments[0].model == "gpt-4o-simulated"


# Each distribution against scipy's own: a sampler returning a constant (or the wrong shape)
# fails the Kolmogorov-Smirnov test by a wide margin (p < 1e-30 at n = 2000).
@pytest.mark.parametrize(("dist", "reference"), [
    (Dist("uniform", 2, 4), stats.uniform(loc=2, scale=2)),
    (Dist("normal", 10, 1), stats.norm(loc=10, scale=1)),
    (Dist("lognormal", 10, 0.2), stats.lognorm(s=0.2, scale=10)),
    (Dist("exponential", 3), stats.expon(scale=3)),
])
def test_distributions_follow_their_law(dist: Dist, reference) -> None:
    rng = random.Random(0)
    values = [dist.sample(rng) for _ in range(2000)]
    assert stats.kstest(values, reference.cdf).pvalue > 0.001
    assert stats.kstest([reference.median()] * 2000, reference.cdf).pvalue < 1e-30


def test_fixed_distribution_and_clipping_at_zero() -> None:
    rng = random.Random(1)
    assert {Dist("fixed", 5).sample(rng) for _ in range(50)} == {5}
    # normal(1, 2) is negative with probability Φ(-0.5); those draws become exactly 0.
    values = [Dist("normal", 1, 2).sample(rng) for _ in range(2000)]
    assert min(values) == 0.0
    zeros = sum(v == 0.0 for v in values)
    assert stats.binomtest(zeros, len(values), stats.norm.cdf(-0.5)).pvalue > 0.001


def test_default_file_is_the_packaged_one() -> None:
    assert DEFAULT_DEPLOYMENTS_FILE.name == "default_deployments.yaml"
    assert DEFAULT_DEPLOYMENTS_FILE.is_file()


# The shared YAML loader (compare._yaml), as the server's deployments file meets it.


def test_unquoted_dates_are_text_and_merge_keys_work(tmp_path: Path) -> None:
    path = _write(tmp_path, "base: &b {backend: simulated, version: 2024-10-21}\n"
                  "deployments:\n  a:\n    <<: *b\n    version: 2025-01-01\n  b: *b\n")
    with pytest.raises(ConfigError, match="unknown key"):  # `base` is not a top-level key
        load_config(path)
    path = _write(tmp_path, "deployments:\n  a: &b {backend: simulated, version: 2024-10-21}\n"
                  "  b:\n    <<: *b\n    version: 2025-01-01\n")
    a, b = load_config(path).deployments
    assert (a.version, b.version, b.backend) == ("2024-10-21", "2025-01-01", "simulated")


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("deployments:\n  a:\n    backend: simulated\n    7: x\n", 4, "keys must be strings, got 7"),
    ("deployments:\n  a:\n    backend: simulated\n    backend: llama\n", 4,
     "duplicate key 'backend' (first on line 3)"),
    ("deployments:\n  a: &x\n    backend: simulated\n    me: *x\n", 2, "alias refers to itself"),
    ("deployments:\n  a:\n    backend: simulated\n    defaults: {stop: "
     + "[" * 120 + "]" * 120 + "}\n", 4, "nested more than 100 levels"),
])
def test_loader_protections_name_the_line(tmp_path: Path, text: str, line: int,
                                          needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == line and needle in str(info.value), str(info.value)


def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = _write(tmp_path, "\n".join(lines) + "\ndeployments: {a: {backend: simulated}}\n")
    with pytest.raises(ConfigError, match="expands to more than 100000 values"):
        load_config(path)
