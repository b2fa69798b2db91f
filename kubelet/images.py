"""Container images: references, the local registry directory, and a node's image store.

kplane has no container engine and no network registry. Images are plain directories shipped in
``deploy/images/`` (the *registry*)::

    deploy/images/<repository>/<tag>/image.yaml   entrypoint, cmd, env, workingDir
    deploy/images/<repository>/<tag>/rootfs/...   files at their absolute paths (/app/server.py)

``<repository>`` is the reference's path without Docker Hub's ``library/`` prefix (``busybox``,
``myapp``); images of other registries live under their domain (``registry.k8s.io/pause``).
A node *pulls* an image by copying it into its store (:class:`ImageStore`), atomically (copy to a
temporary directory, then rename), so a kubelet killed mid-pull never leaves half an image. The
image id is ``sha256:`` over the manifest and every file (path, type, exec bit, content), so
changing a file in the registry changes the id, and ``imagePullPolicy: Always`` picks it up.

References are parsed with Docker's grammar and normalized as containerd does
(``busybox`` -> ``docker.io/library/busybox:latest``). Errors carry the reasons and (short, true)
wordings the kubelet reports: ``InvalidImageName``, ``ErrImagePull``, ``ErrImageNeverPull``.

Also here, the pure rules that combine an image with a container spec: the default pull policy,
whether to pull, the argv (``command``/``args`` over ``ENTRYPOINT``/``CMD``), env and workingDir.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubelet.runtime import RuntimeFailure

DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "deploy" / "images"
MANIFEST = "image.yaml"
ROOTFS = "rootfs"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

# -- errors ----------------------------------------------------------------------------------------


class ImageError(RuntimeFailure):
    """An image problem, with the Kubernetes waiting reason in ``reason``."""


class InvalidImageName(ImageError):
    def __init__(self, image: str, detail: str = "") -> None:
        suffix = f": {detail}" if detail else ""
        super().__init__(
            "InvalidImageName",
            f'Failed to apply default image tag "{image}": couldn\'t parse image reference "{image}": '
            f"invalid reference format{suffix}",
        )


class ErrImagePull(ImageError):
    def __init__(self, message: str) -> None:
        super().__init__("ErrImagePull", message)


class ErrImageNeverPull(ImageError):
    def __init__(self, image: str) -> None:
        super().__init__(
            "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
        )


class ManifestError(ValueError):
    """A registry image is malformed; the message names the file and the field."""


# -- references ------------------------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """A parsed reference. ``tag`` is None when the reference has none (``latest`` is implied
    unless there is a digest)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def effective_tag(self) -> str | None:
        if self.tag is None and self.digest is None:
            return "latest"
        return self.tag

    @property
    def name(self) -> str:
        """Normalized, as containerd names images: ``docker.io/library/busybox:latest``."""
        out = self.repository
        if self.effective_tag is not None:
            out += f":{self.effective_tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """Short form, as Docker prints it: ``busybox:latest``, ``kplane/app:v1``."""
        repo = self.repository
        if self.domain == DOCKER_HUB:
            repo = self.path.removeprefix("library/")
        out = repo
        if self.effective_tag is not None:
            out += f":{self.effective_tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        return self.name


def parse_reference(image: str) -> ImageRef:
    """Parse ``name``, ``name:tag``, ``registry[:port]/path:tag``, ``...@sha256:<hex>``.

    Raises :class:`InvalidImageName` for anything Docker's reference grammar rejects."""
    if not image or len(image) > 4096 or image != image.strip():
        raise InvalidImageName(image)
    rest = image
    digest: str | None = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidImageName(image, "invalid digest (want sha256:<64 hex digits>)")
    tag: str | None = None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidImageName(image)
    first, sep, remainder = rest.partition("/")
    if not sep or (not any(ch in first for ch in ".:") and first != "localhost" and first.lower() == first):
        domain, path = DOCKER_HUB, rest
    else:
        domain, path = first, remainder
        if not _DOMAIN_RE.match(domain):
            raise InvalidImageName(image)
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise InvalidImageName(image, "repository name must be lowercase")
        raise InvalidImageName(image)
    if len(domain) + 1 + len(path) > 255:
        raise InvalidImageName(image, "repository name must not be more than 255 characters")
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


# -- pure rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # in manifest order
    working_dir: str = ""


def pull_policy_default(image: str, policy: str | None) -> str:
    """Kubernetes' defaulting: an explicit policy wins; otherwise ``Always`` for ``:latest`` or no
    tag (and no digest), else ``IfNotPresent``."""
    if policy:
        if policy not in PULL_POLICIES:
            raise ValueError(
                f'unsupported imagePullPolicy "{policy}": want one of {", ".join(PULL_POLICIES)}'
            )
        return policy
    ref = parse_reference(image)
    return "Always" if ref.effective_tag == "latest" and ref.digest is None else "IfNotPresent"


def should_pull(image: str, policy: str | None, present: bool) -> bool:
    """Whether to pull before starting a container. ``Never`` with the image absent raises
    :class:`ErrImageNeverPull`."""
    effective = pull_policy_default(image, policy)
    if effective == "Always":
        return True
    if effective == "IfNotPresent":
        return not present
    if not present:
        raise ErrImageNeverPull(image)
    return False


def container_argv(
    image: Image | ImageConfig, command: Sequence[str] | None, args: Sequence[str] | None
) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the entrypoint *and* drops the image's cmd; ``args``
    replace the cmd; with neither, entrypoint + cmd. (Empty lists count as unset.)"""
    config = image.config if isinstance(image, Image) else image
    if command:
        return [*command, *(args or ())]
    return [*config.entrypoint, *(args if args else config.cmd)]


def container_env(image: Image | ImageConfig, env: Mapping[str, str]) -> dict[str, str]:
    """The image's env with the container's on top (containerd's order)."""
    config = image.config if isinstance(image, Image) else image
    out = dict(config.env)
    out.update(env)
    return out


def container_working_dir(image: Image | ImageConfig, working_dir: str | None) -> str:
    """The container's workingDir, else the image's, else ``/``."""
    config = image.config if isinstance(image, Image) else image
    return working_dir or config.working_dir or "/"


# -- manifests -------------------------------------------------------------------------------------

_FIELDS = ("description", "entrypoint", "cmd", "env", "workingDir")


def _string_list(where: str, name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{where}: {name}: must be a list of strings")
    return tuple(value)


def parse_manifest(path: Path, data: bytes | None = None) -> ImageConfig:
    """Validate and parse an ``image.yaml``; errors name the file and the field."""
    where = str(path)
    try:
        raw = data if data is not None else path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"{where}: {exc.strerror or exc}") from None
    try:
        doc = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{where}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: must be a mapping of {', '.join(_FIELDS)}")
    for key in doc:
        if key not in _FIELDS:
            raise ManifestError(f'{where}: unknown field "{key}" (known: {", ".join(_FIELDS)})')
    if "description" in doc and not isinstance(doc["description"], str):
        raise ManifestError(f"{where}: description: must be a string")
    entrypoint = _string_list(where, "entrypoint", doc.get("entrypoint"))
    cmd = _string_list(where, "cmd", doc.get("cmd"))
    env_raw = doc.get("env") or {}
    if not isinstance(env_raw, dict):
        raise ManifestError(f"{where}: env: must be a mapping of name to string value")
    env: list[tuple[str, str]] = []
    for k, v in env_raw.items():
        if not isinstance(k, str) or not k or "=" in k:
            raise ManifestError(f"{where}: env: invalid variable name {k!r}")
        if not isinstance(v, str):
            raise ManifestError(f'{where}: env.{k}: must be a string (quote it: "{v}")')
        env.append((k, v))
    wd = doc.get("workingDir") or ""
    if not isinstance(wd, str) or (wd and not wd.startswith("/")):
        raise ManifestError(f"{where}: workingDir: must be an absolute path")
    return ImageConfig(entrypoint=entrypoint, cmd=cmd, env=tuple(env), working_dir=wd)


def _walk(rootfs: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative posix path, lstat) of every entry under ``rootfs`` (symlinks are not followed)."""
    for dirpath, dirnames, filenames in os.walk(rootfs):
        rel_dir = os.path.relpath(dirpath, rootfs)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield rel, os.lstat(rootfs / rel)


def image_digest(image_dir: Path) -> tuple[str, int]:
    """(``sha256:<hex>``, size in bytes) over the manifest and every file of ``rootfs/``."""
    h = hashlib.sha256()
    size = 0

    def add(kind: bytes, data: bytes) -> None:
        h.update(kind + len(data).to_bytes(8, "big") + data)

    manifest = (image_dir / MANIFEST).read_bytes()
    add(b"M", manifest)
    size += len(manifest)
    rootfs = image_dir / ROOTFS
    for rel, st in sorted(_walk(rootfs)) if rootfs.is_dir() else []:
        relb = rel.encode()
        if stat.S_ISDIR(st.st_mode):
            add(b"D", relb)
        elif stat.S_ISLNK(st.st_mode):
            add(b"L", relb + b"\0" + os.readlink(rootfs / rel).encode())
        elif stat.S_ISREG(st.st_mode):
            add(b"F", relb + b"\0" + (b"x" if st.st_mode & 0o111 else b"-"))
            h.update(b"C" + st.st_size.to_bytes(8, "big"))
            with open(rootfs / rel, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            size += st.st_size
        else:
            raise ManifestError(f"{rootfs / rel}: only files, directories and symlinks can be in an image")
    return "sha256:" + h.hexdigest(), size


# -- the registry ----------------------------------------------------------------------------------


@dataclass
class RegistryImage:
    ref: ImageRef  # as resolved (tag filled in for digest lookups)
    directory: Path  # holds image.yaml and rootfs/
    config: ImageConfig
    id: str
    size_bytes: int


def _not_found(ref: ImageRef) -> ErrImagePull:
    return ErrImagePull(
        f'failed to pull and unpack image "{ref.name}": failed to resolve reference "{ref.name}": '
        f"{ref.name}: not found"
    )


class Registry:
    """The local registry directory (default: the repository's ``deploy/images``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else DEFAULT_REGISTRY

    def _repo_dir(self, ref: ImageRef) -> Path:
        if ref.domain == DOCKER_HUB:
            return self.path / ref.path.removeprefix("library/")
        return self.path / ref.domain / ref.path

    def _load(self, ref: ImageRef, directory: Path) -> RegistryImage:
        manifest = directory / MANIFEST
        config = parse_manifest(manifest)
        rootfs = directory / ROOTFS
        if rootfs.exists() and not rootfs.is_dir():
            raise ManifestError(f"{rootfs}: must be a directory")
        digest, size = image_digest(directory)
        return RegistryImage(ref=ref, directory=directory, config=config, id=digest, size_bytes=size)

    def lookup(self, image: str | ImageRef) -> RegistryImage:
        """Resolve a reference. Raises :class:`ErrImagePull` (not found) or :class:`ManifestError`."""
        ref = parse_reference(image) if isinstance(image, str) else image
        repo = self._repo_dir(ref)
        if ref.digest is not None:
            for tag_dir in sorted(repo.iterdir()) if repo.is_dir() else []:
                if not (tag_dir / MANIFEST).is_file():
                    continue
                found = self._load(ref, tag_dir)
                if found.id == ref.digest and (ref.tag is None or ref.tag == tag_dir.name):
                    return found
            raise _not_found(ref)
        directory = repo / (ref.effective_tag or "latest")
        if not (directory / MANIFEST).is_file():
            raise _not_found(ref)
        return self._load(ref, directory)

    def references(self) -> list[ImageRef]:
        """Every image the registry holds (for listings and docs)."""
        out: list[ImageRef] = []
        if not self.path.is_dir():
            return out
        for manifest in sorted(self.path.rglob(MANIFEST)):
            tag_dir = manifest.parent
            if ROOTFS in tag_dir.relative_to(self.path).parts:
                continue
            repo = tag_dir.parent.relative_to(self.path).as_posix()
            with contextlib.suppress(InvalidImageName):
                out.append(parse_reference(f"{repo}:{tag_dir.name}"))
        return out


# -- a node's store --------------------------------------------------------------------------------


@dataclass
class Image:
    """A pulled image in a node's store."""

    ref: ImageRef
    id: str
    directory: Path
    config: ImageConfig
    size_bytes: int

    @property
    def root(self) -> Path:
        """The files, at their absolute paths below (``ContainerConfig.image_root``)."""
        return self.directory / ROOTFS

    @property
    def entrypoint(self) -> list[str]:
        return list(self.config.entrypoint)

    @property
    def cmd(self) -> list[str]:
        return list(self.config.cmd)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.config.env)

    @property
    def working_dir(self) -> str:
        return self.config.working_dir


@dataclass
class ImageSummary:
    """One entry of a Node's ``status.images``."""

    names: list[str]
    size_bytes: int
    id: str = ""


class ImageStore:
    """A node's pulled images under ``<node_dir>/images``: ``sha256/<hex>/{image.yaml,rootfs}``
    plus ``refs.json`` (normalized reference -> id). Methods are blocking but short; a pull copies
    files, so async callers use :meth:`ensure` (which runs it in a thread)."""

    def __init__(self, node_dir: Path, registry: Registry | None = None) -> None:
        self.dir = Path(node_dir) / "images"
        self.registry = registry or Registry()
        self._blobs = self.dir / "sha256"
        self._refs_path = self.dir / "refs.json"
        self._lock = threading.Lock()
        self._cache: dict[str, Image] = {}
        self._blobs.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".pull-*"):  # a pull interrupted by a crash
            shutil.rmtree(stale, ignore_errors=True)
        self._refs = self._read_refs()

    def _read_refs(self) -> dict[str, str]:
        try:
            data = json.loads(self._refs_path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_refs(self) -> None:
        tmp = self._refs_path.with_name(f".refs.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(self._refs, indent=1, sort_keys=True))
        os.replace(tmp, self._refs_path)

    def _blob(self, image_id: str) -> Path:
        return self._blobs / image_id.removeprefix("sha256:")

    def _image_id(self, ref: ImageRef) -> str | None:
        if ref.digest is not None and self._blob(ref.digest).is_dir():
            return ref.digest
        image_id = self._refs.get(ref.name)
        if image_id is not None and self._blob(image_id).is_dir():
            return image_id
        return None

    def present(self, image: str | ImageRef) -> bool:
        ref = parse_reference(image) if isinstance(image, str) else image
        return self._image_id(ref) is not None

    def get(self, image: str | ImageRef) -> Image | None:
        """The stored image a reference names, or None."""
        ref = parse_reference(image) if isinstance(image, str) else image
        image_id = self._image_id(ref)
        if image_id is None:
            return None
        cached = self._cache.get(image_id)
        if cached is None:
            directory = self._blob(image_id)
            _digest, size = image_digest(directory)
            cached = Image(
                ref=ref,
                id=image_id,
                directory=directory,
                config=parse_manifest(directory / MANIFEST),
                size_bytes=size,
            )
            self._cache[image_id] = cached
        if cached.ref != ref:
            return Image(
                ref=ref,
                id=cached.id,
                directory=cached.directory,
                config=cached.config,
                size_bytes=cached.size_bytes,
            )
        return cached

    def pull(self, image: str | ImageRef) -> Image:
        """Copy the image from the registry into the store (atomically) and tag it."""
        ref = parse_reference(image) if isinstance(image, str) else image
        try:
            source = self.registry.lookup(ref)
        except ManifestError as exc:
            raise ErrImagePull(f'failed to pull and unpack image "{ref.name}": {exc}') from None
        target = self._blob(source.id)
        if not target.is_dir():
            tmp = self.dir / f".pull-{uuid.uuid4().hex}"
            try:
                shutil.copytree(source.directory, tmp, symlinks=True)
                try:
                    os.rename(tmp, target)
                except OSError:
                    if not target.is_dir():  # not a concurrent pull of the same image
                        raise
            except OSError as exc:
                raise ErrImagePull(f'failed to pull and unpack image "{ref.name}": {exc}') from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        with self._lock:
            if self._refs.get(ref.name) != source.id:
                self._refs[ref.name] = source.id
                self._write_refs()
        found = self.get(ref)
        assert found is not None
        return found

    async def ensure(self, image: str, policy: str | None = None) -> Image:
        """What a pod worker calls before creating a container: apply the pull policy, pull when
        needed, return the image. Raises :class:`ImageError` subclasses with Kubernetes reasons."""
        ref = parse_reference(image)
        if should_pull(image, policy, self.present(ref)):
            return await asyncio.to_thread(self.pull, ref)
        found = self.get(ref)
        assert found is not None
        return found

    def remove(self, image: str | ImageRef) -> None:
        """Untag; the files go when no reference is left."""
        ref = parse_reference(image) if isinstance(image, str) else image
        with self._lock:
            image_id = self._refs.pop(ref.name, None)
            if image_id is None:
                return
            self._write_refs()
            if image_id in self._refs.values():
                return
        self._cache.pop(image_id, None)
        shutil.rmtree(self._blob(image_id), ignore_errors=True)

    def list(self) -> list[ImageSummary]:
        """For the Node's ``status.images``: names (``repo@id`` and every tag), size; largest first."""
        by_id: dict[str, list[str]] = {}
        for name, image_id in sorted(self._refs.items()):
            if self._blob(image_id).is_dir():
                by_id.setdefault(image_id, []).append(name)
        out: list[ImageSummary] = []
        for image_id, names in by_id.items():
            found = self.get(parse_reference(names[0]))
            size = found.size_bytes if found is not None else 0
            repos = sorted({parse_reference(n).repository for n in names})
            out.append(
                ImageSummary(names=[f"{r}@{image_id}" for r in repos] + names, size_bytes=size, id=image_id)
            )
        out.sort(key=lambda s: (-s.size_bytes, s.names[0]))
        return out
