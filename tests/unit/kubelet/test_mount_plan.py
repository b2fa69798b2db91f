"""The process runtime's filesystem view, planned against fake hosts built in a temp directory.

HostFS(root=...) maps absolute host paths into the temp tree, so these tests read a real (small)
filesystem; the arguments name the unmapped paths, exactly what bubblewrap would get.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubelet.runtime import Mount
from kubelet.runtime.mountplan import HostFS, PlanError, find_executable, plan_mounts


def build(root: Path, spec: dict[str, object]) -> None:
    """spec: path -> "dir" | "file" | "exec" | ("link", target) | bytes/str content."""
    for rel, what in spec.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if what == "dir":
            p.mkdir(parents=True, exist_ok=True)
        elif isinstance(what, tuple):
            os.symlink(what[1], p)
        elif what == "exec":
            p.write_text("#!/bin/sh\n")
            p.chmod(0o755)
        else:
            p.write_text("x" if what == "file" else str(what))


@pytest.fixture
def host(tmp_path: Path) -> HostFS:
    root = tmp_path / "host"
    build(
        root,
        {
            "/bin": ("link", "usr/bin"),
            "/lib": ("link", "usr/lib"),
            "/usr/bin/sh": "exec",
            "/usr/bin/python3": "exec",
            "/usr/bin/notexec": "file",
            "/usr/lib/libc.so": "file",
            "/usr/share/doc/readme": "file",
            "/usr/share/man/man1/sh.1": "file",
            "/usr/share/zoneinfo": ("link", "/usr/share/doc"),
            "/etc/hosts": "file",
            "/etc/passwd": "file",
            "/proc/1/stat": "file",
            "/dev/null": "file",
            "/tmp/hostjunk": "file",
            "/sys/kernel": "dir",
            "/opt": "dir",
            "/kplane/pods/p1/volumes/v1/existing": "file",
            "/kplane/pods/p1/volumes/v2": "dir",
            "/kplane/images/nginx/rootfs/usr/share/nginx/html/index.html": "<h1>hi</h1>",
            "/kplane/images/myapp/rootfs/app/server.py": "print(1)",
            "/kplane/images/myapp/rootfs/usr/bin/myapp": "exec",
            "/kplane/images/myapp/rootfs/usr/local/bin/tool": "exec",
            "/kplane/images/myapp/rootfs/etc/myapp.conf": "file",
            "/kplane/images/linky/rootfs/usr/bin/py": ("link", "python3"),
            "/elsewhere/vol": "dir",
            "/elsewhere/cfg": "file",
        },
    )
    return HostFS(root)


def triples(args: list[str]) -> list[tuple[str, ...]]:
    """Group the flat argument list into (option, operands...) tuples."""
    arity = {
        "--bind": 2,
        "--ro-bind": 2,
        "--symlink": 2,
        "--tmpfs": 1,
        "--dir": 1,
        "--proc": 1,
        "--dev": 1,
        "--remount-ro": 1,
    }
    out: list[tuple[str, ...]] = []
    i = 0
    while i < len(args):
        n = arity[args[i]]
        out.append(tuple(args[i : i + n + 1]))
        i += n + 1
    return out


def index(ops: list[tuple[str, ...]], op: tuple[str, ...]) -> int:
    assert op in ops, f"{op} not in {ops}"
    return ops.index(op)


def dests(ops: list[tuple[str, ...]]) -> list[str]:
    return [op[-1] for op in ops if op[0] != "--remount-ro"]


NGINX = "/kplane/images/nginx/rootfs"
MYAPP = "/kplane/images/myapp/rootfs"
WRITABLE = ["/kplane"]


def test_host_only_view(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, []).args)
    assert ("--symlink", "usr/bin", "/bin") in ops
    assert ("--symlink", "usr/lib", "/lib") in ops
    assert ("--ro-bind", "/usr", "/usr") in ops
    assert ("--ro-bind", "/etc", "/etc") in ops
    assert ("--proc", "/proc") in ops
    assert ("--dev", "/dev") in ops
    assert ("--tmpfs", "/tmp") in ops
    # the host's own /proc, /dev, /tmp are never bound, and nothing is synthesized
    assert all(op[-1] not in ("/proc", "/dev", "/tmp") for op in ops if op[0] == "--ro-bind")
    assert not [op for op in ops if op[0] in ("--tmpfs",) and op[1] != "/tmp"]
    assert len(dests(ops)) == len(set(dests(ops)))


def test_volume_at_new_top_level_path(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, [Mount(Path("/elsewhere/vol"), "/data")]).args)
    assert ("--bind", "/elsewhere/vol", "/data") in ops
    # the root is bubblewrap's tmpfs: /data is created there, nothing else changes
    assert [op for op in ops if op[0] == "--tmpfs"] == [("--tmpfs", "/tmp")]


def test_read_only_and_writable_mounts(host: HostFS) -> None:
    mounts = [Mount(Path("/elsewhere/vol"), "/data"), Mount(Path("/elsewhere/cfg"), "/config/app.conf", True)]
    ops = triples(plan_mounts(host, None, mounts).args)
    assert ("--bind", "/elsewhere/vol", "/data") in ops
    assert ("--ro-bind", "/elsewhere/cfg", "/config/app.conf") in ops
    assert ("--dir", "/config") in ops


def test_image_under_existing_host_directory_synthesizes_deepest_existing(host: HostFS) -> None:
    ops = triples(plan_mounts(host, NGINX, []).args)
    usr = index(ops, ("--ro-bind", "/usr", "/usr"))
    share = index(ops, ("--tmpfs", "/usr/share"))
    assert usr < share
    # every original child of /usr/share is bound back, symlinks re-created
    assert share < index(ops, ("--ro-bind", "/usr/share/doc", "/usr/share/doc"))
    assert share < index(ops, ("--ro-bind", "/usr/share/man", "/usr/share/man"))
    assert share < index(ops, ("--symlink", "/usr/share/doc", "/usr/share/zoneinfo"))
    nginx = index(ops, ("--ro-bind", f"{NGINX}/usr/share/nginx", "/usr/share/nginx"))
    assert share < nginx < index(ops, ("--remount-ro", "/usr/share"))
    # only the deepest existing directory is replaced
    assert ("--tmpfs", "/usr") not in ops


def test_nested_synthesized_paths(host: HostFS) -> None:
    mounts = [Mount(Path("/elsewhere/vol"), "/usr/share/nginx/html/cache")]
    ops = triples(plan_mounts(host, NGINX, mounts).args)
    order = [
        index(ops, ("--tmpfs", "/usr/share")),
        index(ops, ("--ro-bind", f"{NGINX}/usr/share/nginx", "/usr/share/nginx")),
        index(ops, ("--tmpfs", "/usr/share/nginx/html")),
        index(
            ops, ("--ro-bind", f"{NGINX}/usr/share/nginx/html/index.html", "/usr/share/nginx/html/index.html")
        ),
        index(ops, ("--bind", "/elsewhere/vol", "/usr/share/nginx/html/cache")),
        index(ops, ("--remount-ro", "/usr/share/nginx/html")),
    ]
    assert order == sorted(order)
    assert index(ops, ("--remount-ro", "/usr/share/nginx/html")) < index(ops, ("--remount-ro", "/usr/share"))


def test_deep_missing_path_synthesizes_only_the_deepest_existing_directory(host: HostFS) -> None:
    mounts = [Mount(Path("/elsewhere/vol"), "/usr/share/doc/new/deeper/vol")]
    ops = triples(plan_mounts(host, None, mounts).args)
    assert ("--tmpfs", "/usr/share/doc") in ops
    assert ("--tmpfs", "/usr/share") not in ops
    assert ("--ro-bind", "/usr/share/doc/readme", "/usr/share/doc/readme") in ops
    assert index(ops, ("--dir", "/usr/share/doc/new")) < index(ops, ("--dir", "/usr/share/doc/new/deeper"))
    assert index(ops, ("--dir", "/usr/share/doc/new/deeper")) < index(
        ops, ("--bind", "/elsewhere/vol", "/usr/share/doc/new/deeper/vol")
    )


def test_mount_under_an_image_path(host: HostFS) -> None:
    mounts = [Mount(Path("/elsewhere/cfg"), "/app/config/settings.yaml", True)]
    ops = triples(plan_mounts(host, MYAPP, mounts).args)
    # /app is new on the host: the image's directory is bound whole, then synthesized to add config/
    app = index(ops, ("--tmpfs", "/app"))
    assert ("--ro-bind", f"{MYAPP}/app", "/app") not in ops
    assert app < index(ops, ("--ro-bind", f"{MYAPP}/app/server.py", "/app/server.py"))
    assert app < index(ops, ("--dir", "/app/config"))
    assert index(ops, ("--dir", "/app/config")) < index(
        ops, ("--ro-bind", "/elsewhere/cfg", "/app/config/settings.yaml")
    )
    assert index(ops, ("--ro-bind", "/elsewhere/cfg", "/app/config/settings.yaml")) < index(
        ops, ("--remount-ro", "/app")
    )


def test_image_files_merge_into_host_directories(host: HostFS) -> None:
    ops = triples(plan_mounts(host, MYAPP, []).args)
    assert ("--ro-bind", f"{MYAPP}/app", "/app") in ops  # new top-level dir: one bind
    # a new file in an existing host directory: that directory is synthesized
    assert ("--tmpfs", "/usr/bin") in ops
    assert ("--ro-bind", f"{MYAPP}/usr/bin/myapp", "/usr/bin/myapp") in ops
    assert ("--ro-bind", "/usr/bin/sh", "/usr/bin/sh") in ops
    # /usr/local does not exist on the host: /usr is synthesized and the image's local/ bound whole
    assert ("--tmpfs", "/usr") in ops
    assert ("--ro-bind", f"{MYAPP}/usr/local", "/usr/local") in ops
    assert ("--ro-bind", f"{MYAPP}/etc/myapp.conf", "/etc/myapp.conf") in ops
    assert len(dests(ops)) == len(set(dests(ops)))


def test_image_symlink_replaces_host_entry(host: HostFS) -> None:
    ops = triples(plan_mounts(host, "/kplane/images/linky/rootfs", []).args)
    assert ("--symlink", "python3", "/usr/bin/py") in ops
    assert ("--tmpfs", "/usr/bin") in ops


def test_mount_over_existing_file_needs_no_synthesis(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, [Mount(Path("/elsewhere/cfg"), "/etc/hosts", True)]).args)
    assert ("--ro-bind", "/elsewhere/cfg", "/etc/hosts") in ops
    assert ("--tmpfs", "/etc") not in ops


def test_directory_over_file_drops_the_file(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, [Mount(Path("/elsewhere/vol"), "/etc/hosts")]).args)
    assert ("--tmpfs", "/etc") in ops
    assert ("--ro-bind", "/etc/hosts", "/etc/hosts") not in ops
    assert ("--ro-bind", "/etc/passwd", "/etc/passwd") in ops
    assert ("--bind", "/elsewhere/vol", "/etc/hosts") in ops


def test_symlinks_on_the_target_path_are_followed(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, [Mount(Path("/elsewhere/cfg"), "/bin/tool", True)]).args)
    assert ("--ro-bind", "/elsewhere/cfg", "/usr/bin/tool") in ops
    assert ("--tmpfs", "/usr/bin") in ops
    assert ("--symlink", "usr/bin", "/bin") in ops


def test_nested_volume_mount_points_inside_writable_runtime_volumes(host: HostFS) -> None:
    v1 = Path("/kplane/pods/p1/volumes/v1")
    v2 = Path("/kplane/pods/p1/volumes/v2")
    # given in the "wrong" order: shallower mounts go first
    mounts = [Mount(v2, "/data/sub"), Mount(v1, "/data")]
    ops = triples(plan_mounts(host, None, mounts, writable_roots=WRITABLE).args)
    assert index(ops, ("--bind", str(v1), "/data")) < index(ops, ("--bind", str(v2), "/data/sub"))
    assert ("--tmpfs", "/data") not in ops  # the mount point is created inside the volume itself
    # a volume outside the runtime's root is never written to: synthesized instead (its entries
    # bound back writable; new top-level entries then live in the tmpfs)
    build(Path(host.real("/")), {"/elsewhere/vol/file": "file"})
    mounts = [Mount(Path("/elsewhere/vol"), "/data"), Mount(v2, "/data/sub")]
    ops = triples(plan_mounts(host, None, mounts, writable_roots=WRITABLE).args)
    assert index(ops, ("--tmpfs", "/data")) < index(ops, ("--bind", "/elsewhere/vol/file", "/data/file"))
    assert index(ops, ("--tmpfs", "/data")) < index(ops, ("--bind", str(v2), "/data/sub"))
    assert ("--remount-ro", "/data") not in ops
    # a read-only volume is not written to either
    mounts = [Mount(v1, "/data", True), Mount(v2, "/data/sub")]
    ops = triples(plan_mounts(host, None, mounts, writable_roots=WRITABLE).args)
    assert ("--tmpfs", "/data") in ops
    assert ("--ro-bind", f"{v1}/existing", "/data/existing") in ops
    assert ("--remount-ro", "/data") in ops


def test_mounts_under_tmp_are_created_in_the_private_tmpfs(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, [Mount(Path("/elsewhere/vol"), "/tmp/cache")]).args)
    assert index(ops, ("--tmpfs", "/tmp")) < index(ops, ("--bind", "/elsewhere/vol", "/tmp/cache"))
    assert ("--ro-bind", "/tmp/hostjunk", "/tmp/hostjunk") not in ops


def test_working_dir_is_created_when_missing(host: HostFS) -> None:
    ops = triples(plan_mounts(host, None, [], working_dir="/srv/app").args)
    assert index(ops, ("--dir", "/srv")) < index(ops, ("--dir", "/srv/app"))
    ops = triples(plan_mounts(host, MYAPP, [], working_dir="/app").args)
    assert not [op for op in ops if op[0] == "--dir"]
    with pytest.raises(PlanError, match="not a directory"):
        plan_mounts(host, None, [], working_dir="/etc/hosts")


def test_missing_mount_source_is_an_error(host: HostFS) -> None:
    with pytest.raises(PlanError, match="/nope"):
        plan_mounts(host, None, [Mount(Path("/nope"), "/data")])
    with pytest.raises(PlanError):
        plan_mounts(host, None, [Mount(Path("/elsewhere/vol"), "relative")])


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    build(tmp_path / "h", {"/usr/bin/sh": "exec", "/a": ("link", "b"), "/b": ("link", "a")})
    with pytest.raises(PlanError, match="symbolic links"):
        plan_mounts(HostFS(tmp_path / "h"), None, [Mount(Path("/usr"), "/a/x")])


def test_planning_never_writes_to_the_host(host: HostFS) -> None:
    def snapshot() -> list[tuple[str, int]]:
        out = []
        for dirpath, dirnames, filenames in os.walk(host.root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                out.append((p, os.lstat(p).st_mtime_ns))
        return sorted(out)

    before = snapshot()
    plan = plan_mounts(
        host,
        NGINX,
        [Mount(Path("/elsewhere/vol"), "/data/a/b"), Mount(Path("/kplane/pods/p1/volumes/v1"), "/x/y/z")],
        working_dir="/w/d",
        writable_roots=WRITABLE,
    )
    assert plan.args
    assert snapshot() == before


def test_find_executable_searches_path_in_the_view(host: HostFS) -> None:
    plan = plan_mounts(host, MYAPP, [])
    path = "/usr/local/bin:/usr/bin:/bin"
    assert find_executable(plan, "sh", path) == "/usr/bin/sh"
    assert find_executable(plan, "myapp", path) == "/usr/bin/myapp"  # from the image
    assert find_executable(plan, "tool", path) == "/usr/local/bin/tool"
    assert find_executable(plan, "nosuchcmd", path) is None
    assert find_executable(plan, "notexec", path) is None
    assert find_executable(plan, "sh", "/nowhere") is None
    assert find_executable(plan, "/bin/sh", "") == "/bin/sh"  # through the /bin symlink
    assert find_executable(plan, "/app/server.py", path) is None  # not executable
    assert find_executable(plan, "../usr/bin/python3", path, working_dir="/app") == "/usr/bin/python3"
    plan = plan_mounts(host, "/kplane/images/linky/rootfs", [])
    assert find_executable(plan, "py", "/usr/bin") == "/usr/bin/py"  # symlink in the image -> host file
