"""Client config: default path, load errors, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from kplane.config import ClientConfig, ConfigError, default_config_path, load_config, save_config


def test_default_path_is_home_kplane_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without $KPLANE_CONFIG the config lives at ~/.kplane/config."""
    monkeypatch.delenv("KPLANE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path() == tmp_path / ".kplane" / "config"


def test_env_var_overrides_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$KPLANE_CONFIG names the config file when set."""
    monkeypatch.setenv("KPLANE_CONFIG", str(tmp_path / "other.yaml"))
    assert default_config_path() == tmp_path / "other.yaml"


def test_missing_config_says_where_and_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A missing config names the path (with ~) and tells the user how to get one."""
    monkeypatch.delenv("KPLANE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError) as e:
        load_config()
    assert str(e.value) == (
        "no kplane config at ~/.kplane/config; start a cluster with `make up` (or `kplane up`) or pass --server"
    )


def test_round_trip_and_file_format(tmp_path: Path) -> None:
    """save_config writes the documented YAML and load_config reads it back."""
    path = tmp_path / "sub" / "config"
    save_config(ClientConfig(servers=["127.0.0.1:6443"], namespace="dev"), path)
    text = path.read_text()
    assert "servers: [127.0.0.1:6443]" in text
    assert "cluster: kplane" in text
    cfg = load_config(path)
    assert cfg == ClientConfig(servers=["127.0.0.1:6443"], cluster="kplane", namespace="dev")


def test_defaults_fill_missing_optional_fields(tmp_path: Path) -> None:
    """Only `servers` is required; a single string is accepted as a one-item list."""
    path = tmp_path / "config"
    path.write_text("servers: 127.0.0.1:7000\n")
    cfg = load_config(path)
    assert cfg.servers == ["127.0.0.1:7000"]
    assert (cfg.cluster, cfg.namespace) == ("kplane", "default")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("servers: [127.0.0.1:6443\n", "invalid YAML (line"),
        ("", "got empty"),
        ("- 127.0.0.1:6443\n", "expected a mapping"),
        ("cluster: x\n", "`servers` is missing"),
        ("servers: []\n", "non-empty list"),
        ("servers: [localhost]\n", "servers[0] must be HOST:PORT"),
        ("servers: [127.0.0.1:99999]\n", "servers[0] must be HOST:PORT"),
        ("servers: [127.0.0.1:6443, 5]\n", "servers[1] must be a non-empty string"),
        ("servers: [127.0.0.1:6443]\nnamespace: 3\n", "`namespace` must be a non-empty string"),
        ("servers: [127.0.0.1:6443]\nsever: x\n", "unknown field(s) sever"),
    ],
)
def test_malformed_config_names_path_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    """Each kind of malformed config gets an error with the path and what is wrong."""
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert str(path) in msg and "malformed" in msg
    assert expected in msg


def test_directory_instead_of_file(tmp_path: Path) -> None:
    """A directory where the config should be is reported as such."""
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_awkward_values_survive_the_round_trip(tmp_path: Path) -> None:
    """Values that are not plain YAML scalars (IPv6 brackets, a colon-space) are quoted and read back."""
    path = tmp_path / "config"
    cfg = ClientConfig(servers=["[::1]:6443", "127.0.0.2:6443"], cluster="a: b", namespace="yes")
    save_config(cfg, path)
    assert load_config(path) == cfg


def test_component_servers_flag_then_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from kplane.config import component_servers

    assert component_servers("scheduler", "127.0.0.1:1,127.0.0.1:2") == ["127.0.0.1:1", "127.0.0.1:2"]
    monkeypatch.setenv("KPLANE_CONFIG", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as exit_info:
        component_servers("kubelet", "")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("kubelet: no kplane config at")
