"""A container's filesystem view, planned as bubblewrap arguments without touching the host.

The process runtime shows a container the host's own files (so ``sh``, ``python3`` and coreutils
work without a real image), with the image's files and the pod's volumes laid over them at their
absolute paths, a private ``/tmp``, a fresh ``/dev`` and the container's own ``/proc``.

The obvious ``bwrap --bind / / --bind vol /data`` is wrong: when a mount point such as ``/data``
does not exist, bubblewrap creates it *through the bind*, i.e. on the host's real filesystem. So
the view is built on bubblewrap's root tmpfs instead: every top-level host entry is bound (or, for
``/bin -> usr/bin`` style links, re-created with ``--symlink``). When a target's parent does not
exist, the deepest existing directory on its path is *synthesized*: a tmpfs replaces it, each of
its original children is bound back into the tmpfs, and the new mount point is then created in
memory. Nothing outside the given ``writable_roots`` (the runtime's own directory, where volumes
live) is ever created on the host.

Planning is pure: it reads the host through :class:`HostFS` (rooted anywhere, so tests build fake
hosts in a temporary directory) and returns a :class:`MountPlan`: the argument list and a model of
the view that answers "which host file backs this container path" (``execvp``-style command
lookup before start, see :func:`find_executable`).

Rules, in order: the host's entries (read-only), then the image's files (read-only: the image store
is shared by every container of that image), merged into the host's directories, then the mounts,
shallowest first (a volume at ``/a`` comes before one at ``/a/b``), then the working directory is
made to exist. Symbolic links on a target's path are followed inside the view, as the kernel
would; a target that replaces an entry of another type (a file where a directory was) drops the
original entry. A writable volume that needs a mount point inside it (a volume at ``/data`` and
another at ``/data/sub``) gets the mount point created in the volume itself when it lies under
``writable_roots``; otherwise it is synthesized like any other directory: its entries stay
writable, but new top-level entries then live in the tmpfs, not in the volume.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kubelet.runtime import Mount

EntryKind = Literal["dir", "file", "symlink", "other"]

# How a node of the view comes to exist:
#   bind     --bind/--ro-bind of ``source`` at the node's path
#   inside   no argument: part of an ancestor's bind (its content is ``source``)
#   synth    a tmpfs re-populated with binds of ``source``'s children (the root is one, over "/")
#   mkdir    a directory created inside a tmpfs (--dir)
#   symlink  --symlink ``target`` at the node's path
#   proc/dev/tmpfs  --proc, --dev, --tmpfs
How = Literal["bind", "inside", "synth", "mkdir", "symlink", "proc", "dev", "tmpfs"]

_MAX_SYMLINKS = 40  # ELOOP, as the kernel counts


class PlanError(Exception):
    """The requested view cannot be built (missing mount source, symlink loop, ...)."""


class HostFS:
    """Read-only lookups on the host's filesystem. ``root`` maps absolute host paths somewhere else
    (tests); the paths in the produced arguments are always the unmapped ones."""

    def __init__(self, root: Path | str = "/") -> None:
        self.root = Path(root)

    def real(self, path: str) -> str:
        if str(self.root) == "/":
            return path
        return str(self.root) + path if path != "/" else str(self.root)

    @staticmethod
    def _kind(mode: int) -> EntryKind:
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        if stat.S_ISLNK(mode):
            return "symlink"
        return "other"

    def lkind(self, path: str) -> EntryKind | None:
        """The entry's type, not following a final symlink; None when it does not exist."""
        try:
            return self._kind(os.lstat(self.real(path)).st_mode)
        except OSError:
            return None

    def kind(self, path: str) -> EntryKind | None:
        """The entry's type following symlinks; None when it (or its link's target) is missing."""
        try:
            return self._kind(os.stat(self.real(path)).st_mode)
        except OSError:
            return None

    def readlink(self, path: str) -> str:
        return os.readlink(self.real(path))

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.real(path)))
        except OSError:
            return []

    def executable(self, path: str) -> bool:
        try:
            st = os.stat(self.real(path))
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


@dataclass
class _Node:
    kind: EntryKind
    how: How
    source: str | None = None  # the host path whose content this node shows
    ro: bool = True
    target: str = ""  # symlinks
    mkdir_ok: bool = False  # new entries may be created in ``source`` itself (a writable volume)
    children: dict[str, _Node] = field(default_factory=dict)


def _join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else f"{parent}/{name}"


def _split(path: str) -> list[str]:
    norm = posixpath.normpath(path)
    if not norm.startswith("/"):
        raise PlanError(f"path {path!r} is not absolute")
    return [p for p in norm.split("/") if p]


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@dataclass
class Resolved:
    """What a container path is in the view: its type, and the host path backing it (None for
    entries that only exist in a tmpfs, /proc or /dev)."""

    path: str  # the container path with symlinks resolved
    kind: EntryKind
    source: str | None


class MountPlan:
    """The view under construction; ``args`` renders it (bubblewrap processes them in order)."""

    def __init__(self, host: HostFS, writable_roots: Sequence[str] = ()) -> None:
        self.host = host
        self.writable_roots = [posixpath.normpath(r) for r in writable_roots]
        self.root = _Node(kind="dir", how="synth", source="/", ro=True)
        self.root.children["proc"] = _Node(kind="dir", how="proc")
        self.root.children["dev"] = _Node(kind="dir", how="dev")
        self.root.children["tmp"] = _Node(kind="dir", how="tmpfs")

    # -- the model ------------------------------------------------------------------------------

    def _child(self, node: _Node, name: str) -> _Node | None:
        """``node``'s entry ``name`` in the view, materialised in ``node.children``."""
        found = node.children.get(name)
        if found is not None:
            return found
        if node.kind != "dir" or node.source is None or node.how not in ("bind", "inside", "synth"):
            return None
        src = _join(node.source, name)
        kind = self.host.lkind(src)
        if kind is None:
            return None
        # A synthesized directory binds its children back one by one; elsewhere they are simply
        # part of an ancestor's bind.
        how: How = "inside" if node.how != "synth" else ("symlink" if kind == "symlink" else "bind")
        child = _Node(kind=kind, how=how, source=src, ro=node.ro, mkdir_ok=node.mkdir_ok and kind == "dir")
        if kind == "symlink":
            child.target = self.host.readlink(src)
        node.children[name] = child
        return child

    def _make_mutable(self, node: _Node, replacing: bool) -> None:
        """Make it possible to create (or, with ``replacing``, substitute) an entry in ``node``."""
        if node.how in ("synth", "mkdir", "tmpfs", "dev", "proc"):
            return
        if node.mkdir_ok and not replacing:
            return  # bubblewrap may create the mount point inside this writable volume
        if node.how not in ("bind", "inside"):
            raise PlanError(f"cannot create entries under a {node.how}")
        node.how = "synth"
        node.mkdir_ok = False
        for child in node.children.values():
            if child.how == "inside":
                child.how = "symlink" if child.kind == "symlink" else "bind"

    def _walk(self, path: str, create_parents: bool) -> tuple[_Node | None, list[str], str | None]:
        """Resolve ``path``'s parent through the view (following symlinks). Returns (parent node,
        resolved components, final name); the parent is None when missing and not created."""
        parts = _split(path)
        if not parts:
            return None, [], None
        for _hop in range(_MAX_SYMLINKS):
            cur = self.root
            done: list[str] = []
            restarted = False
            for i, name in enumerate(parts[:-1]):
                child = self._child(cur, name)
                if child is not None and child.kind == "symlink":
                    base = "/" + "/".join(done)
                    parts = _split(posixpath.join(base, child.target)) + parts[i + 1 :]
                    restarted = True
                    break
                if child is None or child.kind != "dir":
                    if not create_parents:
                        return None, parts, parts[-1]
                    self._make_mutable(cur, replacing=child is not None)
                    child = _Node(kind="dir", how="mkdir")
                    cur.children[name] = child
                cur = child
                done.append(name)
            if restarted:
                continue
            return cur, parts, parts[-1]
        raise PlanError(f"{path}: too many levels of symbolic links")

    def _resolve_final(self, path: str, create_parents: bool) -> tuple[_Node | None, list[str], str | None]:
        """Like :meth:`_walk` but also follows a symlink in the final component."""
        for _hop in range(_MAX_SYMLINKS):
            parent, parts, name = self._walk(path, create_parents)
            if parent is None or name is None:
                return parent, parts, name
            child = self._child(parent, name)
            if child is None or child.kind != "symlink":
                return parent, parts, name
            path = posixpath.join("/" + "/".join(parts[:-1]), child.target)
        raise PlanError(f"{path}: too many levels of symbolic links")

    def place(self, path: str, node: _Node) -> str:
        """Put ``node`` at container ``path``; returns the path with symlinks resolved."""
        if node.kind == "symlink":
            parent, parts, name = self._walk(path, create_parents=True)
        else:
            parent, parts, name = self._resolve_final(path, create_parents=True)
        if parent is None or name is None:
            raise PlanError("cannot mount over /")
        existing = self._child(parent, name)
        if existing is None:
            self._make_mutable(parent, replacing=False)
        elif node.kind == "symlink" or (existing.kind == "dir") != (node.kind == "dir"):
            # bubblewrap cannot put a directory over a file (or a link over anything): the
            # original entry must go, which only a synthesized parent can do.
            self._make_mutable(parent, replacing=True)
        # else: mount over the existing entry; mount points may live in read-only mounts.
        parent.children[name] = node
        return "/" + "/".join(parts)

    def lookup(self, path: str) -> Resolved | None:
        """What ``path`` is in the view, following symlinks; None when it does not exist."""
        if _split(path) == []:
            return Resolved("/", "dir", None)
        parent, parts, name = self._resolve_final(path, create_parents=False)
        if parent is None or name is None:
            return None
        node = self._child(parent, name)
        if node is None:
            return None
        source = node.source if node.how in ("bind", "inside", "synth") else None
        return Resolved("/" + "/".join(parts), node.kind, source)

    # -- building ----------------------------------------------------------------------------------

    def add_image(self, image_root: str, rel: str = "/") -> None:
        """Lay the image's tree (``image_root`` mirrors absolute paths) over the view."""
        here = posixpath.normpath(posixpath.join(image_root, rel.lstrip("/")))
        for name in self.host.listdir(here):
            src = _join(here, name)
            cpath = _join(rel, name)
            kind = self.host.lkind(src)
            if kind == "symlink":
                self.place(cpath, _Node(kind="symlink", how="symlink", target=self.host.readlink(src)))
            elif kind == "dir":
                found = self.lookup(cpath)
                if found is not None and found.kind == "dir":
                    self.add_image(image_root, cpath)  # merge into the existing directory
                else:
                    self.place(cpath, _Node(kind="dir", how="bind", source=src, ro=True))
            elif kind is not None:
                self.place(cpath, _Node(kind=kind, how="bind", source=src, ro=True))

    def add_mount(self, mount: Mount) -> None:
        src = str(mount.host_path)
        kind = self.host.kind(src)
        if kind is None:
            raise PlanError(f"mount source {src} (for {mount.container_path}) does not exist")
        node = _Node(
            kind=kind,
            how="bind",
            source=src,
            ro=mount.read_only,
            mkdir_ok=kind == "dir" and not mount.read_only and _under(src, self.writable_roots),
        )
        self.place(mount.container_path, node)

    def ensure_dir(self, path: str) -> None:
        found = self.lookup(path)
        if found is None:
            self.place(path, _Node(kind="dir", how="mkdir"))
        elif found.kind != "dir":
            raise PlanError(f"{path} is not a directory")

    # -- rendering ---------------------------------------------------------------------------------

    @property
    def args(self) -> list[str]:
        out: list[str] = []
        self._emit(self.root, "/", out)
        return out

    def _bind_args(self, source: str, path: str, ro: bool) -> list[str]:
        return ["--ro-bind" if ro else "--bind", source, path]

    def _emit(self, node: _Node, path: str, out: list[str]) -> None:
        if node.how == "bind":
            assert node.source is not None
            out += self._bind_args(node.source, path, node.ro)
        elif node.how == "symlink":
            out += ["--symlink", node.target, path]
            return
        elif node.how == "proc":
            out += ["--proc", path]
        elif node.how == "dev":
            out += ["--dev", path]
        elif node.how == "tmpfs":
            out += ["--tmpfs", path]
        elif node.how == "mkdir":
            out += ["--dir", path]
        elif node.how == "synth":
            if path != "/":
                out += ["--tmpfs", path]
            assert node.source is not None
            names = set(node.children)
            for name in self.host.listdir(node.source):
                if name in names:
                    continue
                src = _join(node.source, name)
                kind = self.host.lkind(src)
                if kind == "symlink":
                    out += ["--symlink", self.host.readlink(src), _join(path, name)]
                elif kind is not None:
                    out += self._bind_args(src, _join(path, name), node.ro)
        if node.kind == "dir":
            for name in sorted(node.children):
                self._emit(node.children[name], _join(path, name), out)
        if node.how == "synth" and node.ro and path != "/":
            out += ["--remount-ro", path]


def plan_mounts(
    host: HostFS,
    image_root: str | None,
    mounts: Sequence[Mount],
    working_dir: str = "/",
    writable_roots: Sequence[str] = (),
) -> MountPlan:
    """Plan a container's view: host entries, then the image, then ``mounts`` (shallowest first),
    then ``working_dir`` is made to exist. ``writable_roots``: host directories inside which
    mount points may be created for writable volumes (the runtime's own root)."""
    plan = MountPlan(host, writable_roots)
    if image_root is not None and host.kind(image_root) == "dir":
        plan.add_image(image_root)
    for mount in sorted(mounts, key=lambda m: len(_split(m.container_path))):
        plan.add_mount(mount)
    plan.ensure_dir(working_dir or "/")
    return plan


def find_executable(plan: MountPlan, argv0: str, path_env: str, working_dir: str = "/") -> str | None:
    """Where ``execvp(argv0)`` would find its program inside the view: the container path, or None.

    A name with a slash is taken relative to the working directory; a bare name is searched in
    ``path_env``'s directories in order (an empty entry means the working directory, as in glibc).
    """
    candidates: list[str]
    if "/" in argv0:
        candidates = [posixpath.normpath(posixpath.join(working_dir or "/", argv0))]
    else:
        candidates = [
            posixpath.join(posixpath.join(working_dir or "/", d) if d else (working_dir or "/"), argv0)
            for d in path_env.split(":")
        ]
    for cand in candidates:
        try:
            found = plan.lookup(cand)
        except PlanError:
            continue
        if found is None or found.kind != "file" or found.source is None:
            continue
        if plan.host.executable(found.source):
            return cand
    return None
