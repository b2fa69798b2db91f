"""The client config file (kubeconfig-like): which apiserver(s) a client talks to.

``kplane up`` writes it; ``kpctl`` and the components read it. YAML::

    servers: [127.0.0.1:6443]
    cluster: kplane
    namespace: default

Its path is ``$KPLANE_CONFIG`` when set, else ``~/.kplane/config``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # the C loader when libyaml is there
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

CONFIG_ENV = "KPLANE_CONFIG"
DEFAULT_CLUSTER = "kplane"
DEFAULT_NAMESPACE = "default"
_KNOWN_KEYS = ("servers", "cluster", "namespace")


class ConfigError(Exception):
    """The client config is missing or malformed; the message says where and what."""


@dataclass
class ClientConfig:
    """Where a client finds the cluster."""

    servers: list[str]
    cluster: str = DEFAULT_CLUSTER
    namespace: str = DEFAULT_NAMESPACE
    path: Path | None = field(default=None, compare=False, repr=False)


def default_config_path() -> Path:
    """``$KPLANE_CONFIG`` if set, else ``~/.kplane/config``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".kplane" / "config"


def display_path(path: Path) -> str:
    """``path`` with the home directory shortened to ``~``."""
    try:
        rel = path.expanduser().resolve().relative_to(Path.home().resolve())
    except (ValueError, OSError, RuntimeError):
        return str(path)
    return "~" if str(rel) == "." else f"~/{rel}"


def _malformed(path: Path, what: str) -> ConfigError:
    return ConfigError(f"kplane config at {display_path(path)} is malformed: {what}")


def _check_server(path: Path, i: int, server: Any) -> str:
    if not isinstance(server, str) or not server.strip():
        raise _malformed(path, f"servers[{i}] must be a non-empty string like 127.0.0.1:6443, got {server!r}")
    host, sep, port = server.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _malformed(path, f"servers[{i}] must be HOST:PORT like 127.0.0.1:6443, got {server!r}")
    return server.strip()


def parse_config(data: Any, path: Path) -> ClientConfig:
    """Validate the decoded YAML document ``data`` read from ``path``."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise _malformed(path, f"expected a mapping with `servers:`, got {kind}")
    unknown = sorted(str(k) for k in data if k not in _KNOWN_KEYS)
    if unknown:
        raise _malformed(path, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(_KNOWN_KEYS)}")
    servers = data.get("servers")
    if servers is None:
        raise _malformed(path, "`servers` is missing (e.g. servers: [127.0.0.1:6443])")
    if isinstance(servers, str):
        servers = [servers]
    if not isinstance(servers, list) or not servers:
        raise _malformed(path, f"`servers` must be a non-empty list of HOST:PORT, got {servers!r}")
    checked = [_check_server(path, i, s) for i, s in enumerate(servers)]
    out = ClientConfig(servers=checked, path=path)
    for key in ("cluster", "namespace"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise _malformed(path, f"`{key}` must be a non-empty string, got {value!r}")
        setattr(out, key, value)
    return out


def load_config(path: Path | None = None) -> ClientConfig:
    """Read the client config at ``path`` (default :func:`default_config_path`)."""
    path = default_config_path() if path is None else Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no kplane config at {display_path(path)}; start a cluster with `make up` "
            "(or `kplane up`) or pass --server"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"kplane config at {display_path(path)} is a directory, not a file") from None
    except OSError as e:
        raise ConfigError(f"cannot read kplane config at {display_path(path)}: {e.strerror or e}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise _malformed(path, f"invalid YAML{where}: {problem}") from None
    return parse_config(data, path)


def _scalar(value: str) -> str:
    """``value`` as a plain YAML scalar when that reads back as the same string, else quoted."""
    try:
        plain_ok = yaml.load(f"[{value}]", Loader=_Loader) == [value]
    except yaml.YAMLError:
        plain_ok = False
    return value if plain_ok else json.dumps(value)


def render_config(cfg: ClientConfig) -> str:
    """The YAML text of ``cfg`` (``servers: [127.0.0.1:6443]`` style)."""
    servers = ", ".join(_scalar(s) for s in cfg.servers)
    return f"servers: [{servers}]\ncluster: {_scalar(cfg.cluster)}\nnamespace: {_scalar(cfg.namespace)}\n"


def save_config(cfg: ClientConfig, path: Path | None = None) -> Path:
    """Write ``cfg`` to ``path`` (default :func:`default_config_path`) atomically; return the path."""
    path = default_config_path() if path is None else Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_config(cfg)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def component_servers(prog: str, flag: str) -> list[str]:
    """The apiserver addresses a component (scheduler, controller-manager, kubelet) dials: its
    ``--server`` flag (comma separated), else the client config. A missing or broken config
    ends the process with exit code 2 and one line naming the problem."""
    servers = [s for s in flag.split(",") if s]
    if servers:
        return servers
    try:
        return load_config().servers
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
