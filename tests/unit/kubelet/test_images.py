"""Image references, pull policy and argv rules, the registry and a node's image store."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from kubelet.images import (
    DEFAULT_REGISTRY,
    ErrImageNeverPull,
    ErrImagePull,
    ImageConfig,
    ImageStore,
    InvalidImageName,
    ManifestError,
    Registry,
    container_argv,
    container_env,
    container_working_dir,
    parse_manifest,
    parse_reference,
    pull_policy_default,
    should_pull,
)

DIGEST = "sha256:" + "ab" * 32


# -- references ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "name", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("myapp:v1", "docker.io/library/myapp:v1", "myapp:v1"),
        ("kplane/app:v2", "docker.io/kplane/app:v2", "kplane/app:v2"),
        ("docker.io/library/nginx", "docker.io/library/nginx:latest", "nginx:latest"),
        ("index.docker.io/nginx:1", "docker.io/library/nginx:1", "nginx:1"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("localhost:5000/a/b:c", "localhost:5000/a/b:c", "localhost:5000/a/b:c"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}"),
        ("ab__c--d/f_g.h", "docker.io/ab__c--d/f_g.h:latest", "ab__c--d/f_g.h:latest"),
    ],
)
def test_parse_reference(image: str, name: str, familiar: str) -> None:
    ref = parse_reference(image)
    assert ref.name == name
    assert ref.familiar == familiar
    assert str(ref) == name


def test_parse_reference_parts() -> None:
    ref = parse_reference("localhost:5000/team/app:v3")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v3", None)
    assert parse_reference("nginx").tag is None
    assert parse_reference("nginx").effective_tag == "latest"
    assert parse_reference(f"nginx@{DIGEST}").effective_tag is None


@pytest.mark.parametrize(
    "image",
    [
        "",
        " busybox",
        "a.b-c__d/e",
        "busybox:",
        "busybox:-x",
        "a//b",
        "-a",
        "a@sha256:abc",
        "a@md5:" + "0" * 32,
        "a b",
        "a:b:c",
    ],
)
def test_invalid_references(image: str) -> None:
    with pytest.raises(InvalidImageName) as err:
        parse_reference(image)
    assert err.value.reason == "InvalidImageName"
    assert "invalid reference format" in err.value.message


def test_uppercase_repository_says_lowercase() -> None:
    with pytest.raises(InvalidImageName) as err:
        parse_reference("BusyBox")
    assert err.value.message == (
        'Failed to apply default image tag "BusyBox": couldn\'t parse image reference "BusyBox": '
        "invalid reference format: repository name must be lowercase"
    )
    # an uppercase first component with a slash is a domain, not a repository
    assert parse_reference("Example.com/app").domain == "Example.com"


# -- pull policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "policy", "expected"),
    [
        ("busybox", None, "Always"),
        ("busybox", "", "Always"),
        ("busybox:latest", None, "Always"),
        ("busybox:1.36", None, "IfNotPresent"),
        (f"busybox@{DIGEST}", None, "IfNotPresent"),
        (f"busybox:latest@{DIGEST}", None, "IfNotPresent"),
        ("registry.k8s.io/pause", None, "Always"),
        ("busybox", "Never", "Never"),
        ("busybox", "IfNotPresent", "IfNotPresent"),
        ("busybox:1", "Always", "Always"),
    ],
)
def test_pull_policy_default(image: str, policy: str | None, expected: str) -> None:
    assert pull_policy_default(image, policy) == expected


def test_pull_policy_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="Sometimes"):
        pull_policy_default("busybox", "Sometimes")


@pytest.mark.parametrize(
    ("image", "policy", "present", "expected"),
    [
        ("busybox", None, True, True),
        ("busybox", None, False, True),
        ("busybox:1", None, True, False),
        ("busybox:1", None, False, True),
        ("busybox:1", "Always", True, True),
        ("busybox", "IfNotPresent", True, False),
        ("busybox", "Never", True, False),
    ],
)
def test_should_pull(image: str, policy: str | None, present: bool, expected: bool) -> None:
    assert should_pull(image, policy, present) is expected


def test_never_pull_absent_image() -> None:
    with pytest.raises(ErrImageNeverPull) as err:
        should_pull("myapp:v9", "Never", False)
    assert err.value.reason == "ErrImageNeverPull"
    assert err.value.message == 'Container image "myapp:v9" is not present with pull policy of Never'


# -- argv, env, workingDir -------------------------------------------------------------------------

IMG = ImageConfig(
    entrypoint=("/entry", "-e"), cmd=("cmd", "-c"), env=(("A", "1"), ("B", "2")), working_dir="/app"
)
NO_ENTRY = ImageConfig(cmd=("sh",))


@pytest.mark.parametrize(
    ("image", "command", "args", "expected"),
    [
        (IMG, None, None, ["/entry", "-e", "cmd", "-c"]),
        (IMG, [], [], ["/entry", "-e", "cmd", "-c"]),
        (IMG, ["run"], None, ["run"]),  # command drops the image's cmd too
        (IMG, None, ["x", "y"], ["/entry", "-e", "x", "y"]),
        (IMG, ["run"], ["x"], ["run", "x"]),
        (NO_ENTRY, None, None, ["sh"]),
        (NO_ENTRY, None, ["-c", "echo hi"], ["-c", "echo hi"]),
        (NO_ENTRY, ["sh", "-c", "echo hi"], None, ["sh", "-c", "echo hi"]),
        (ImageConfig(), None, None, []),
    ],
)
def test_container_argv(
    image: ImageConfig, command: list[str] | None, args: list[str] | None, expected: list[str]
) -> None:
    assert container_argv(image, command, args) == expected


def test_env_and_working_dir() -> None:
    assert container_env(IMG, {"B": "x", "C": "3"}) == {"A": "1", "B": "x", "C": "3"}
    assert container_working_dir(IMG, "") == "/app"
    assert container_working_dir(IMG, "/w") == "/w"
    assert container_working_dir(NO_ENTRY, None) == "/"


# -- manifests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("entrypont: [sh]\n", 'unknown field "entrypont"'),
        ("- a\n", "must be a mapping"),
        ("cmd: sh\n", "cmd: must be a list of strings"),
        ("entrypoint: [sh, 1]\n", "entrypoint: must be a list of strings"),
        ("env: [A=1]\n", "env: must be a mapping"),
        ("env: {PORT: 80}\n", "env.PORT: must be a string"),
        ("workingDir: app\n", "workingDir: must be an absolute path"),
        ("cmd: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_manifest_names_file_and_field(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "image.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as err:
        parse_manifest(path)
    assert str(path) in str(err.value)
    assert error in str(err.value)


def test_empty_manifest_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "image.yaml"
    path.write_text("# nothing\n")
    assert parse_manifest(path) == ImageConfig()


def test_shipped_images_are_valid() -> None:
    registry = Registry()
    assert registry.path == DEFAULT_REGISTRY
    names = {ref.familiar for ref in registry.references()}
    assert {"busybox:latest", "myapp:v1", "myapp:v2", "nginx:latest", "pause:latest"} <= names
    for ref in registry.references():
        found = registry.lookup(ref)
        assert found.id.startswith("sha256:")
    assert container_argv(registry.lookup("busybox").config, None, None) == ["sh"]
    assert registry.lookup("myapp:v1").id != registry.lookup("myapp:v2").id


# -- the store -------------------------------------------------------------------------------------


def make_image(registry: Path, repo: str, tag: str, manifest: str, files: dict[str, str]) -> Path:
    d = registry / repo / tag
    (d / "rootfs").mkdir(parents=True)
    (d / "image.yaml").write_text(manifest)
    for rel, content in files.items():
        p = d / "rootfs" / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return d


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    root = tmp_path / "registry"
    make_image(
        root, "app", "v1", 'entrypoint: ["python3", "/app/s.py"]\nenv: {V: "1"}\n', {"/app/s.py": "v1"}
    )
    make_image(
        root, "app", "v2", 'entrypoint: ["python3", "/app/s.py"]\nenv: {V: "2"}\n', {"/app/s.py": "v2"}
    )
    make_image(root, "tool", "latest", "cmd: [sh]\n", {})
    make_image(root, "registry.k8s.io/pause", "3.9", "entrypoint: [/pause]\n", {"/pause": "p"})
    make_image(root, "broken", "latest", "cmd: 1\n", {})
    return Registry(root)


def test_pull_present_get(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    assert not store.present("app:v1")
    assert store.get("app:v1") is None
    image = store.pull("app:v1")
    assert store.present("app:v1") and store.present("docker.io/library/app:v1")
    assert not store.present("app:v2")
    assert image.id.startswith("sha256:") and len(image.id) == 71
    assert (image.root / "app" / "s.py").read_text() == "v1"
    assert image.entrypoint == ["python3", "/app/s.py"]
    assert image.env == {"V": "1"}
    assert image.ref.name == "docker.io/library/app:v1"
    assert store.present(f"app@{image.id}")
    # a digest that is not in the store, nor in the registry
    assert not store.present(f"app@{DIGEST}")
    with pytest.raises(ErrImagePull, match="not found"):
        store.pull(f"app@{DIGEST}")
    # by digest from the registry
    v2 = registry.lookup("app:v2")
    assert store.pull(f"app@{v2.id}").id == v2.id
    # other registries live under their domain
    assert store.pull("registry.k8s.io/pause:3.9").entrypoint == ["/pause"]


def test_pull_missing_image_wording(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    with pytest.raises(ErrImagePull) as err:
        store.pull("nosuch")
    assert err.value.reason == "ErrImagePull"
    assert err.value.message == (
        'failed to pull and unpack image "docker.io/library/nosuch:latest": failed to resolve reference '
        '"docker.io/library/nosuch:latest": docker.io/library/nosuch:latest: not found'
    )
    with pytest.raises(ErrImagePull, match=r'"docker\.io/library/app:v3".*not found'):
        store.pull("app:v3")


def test_pull_bad_manifest_is_an_image_pull_error(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    with pytest.raises(ErrImagePull, match=r"broken/latest/image.yaml: cmd: must be a list of strings"):
        store.pull("broken")


def test_image_id_follows_content(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    first = store.pull("tool")
    assert store.pull("tool").id == first.id  # unchanged: same id, no second copy
    assert len(list((store.dir / "sha256").iterdir())) == 1
    script = registry.path / "tool" / "latest" / "rootfs" / "bin" / "t"
    script.parent.mkdir(parents=True)
    script.write_text("echo")
    second = store.pull("tool")
    assert second.id != first.id
    script.chmod(0o755)  # the exec bit is part of the id
    assert store.pull("tool").id != second.id
    assert store.get("tool") is not None and store.get("tool").id != first.id  # type: ignore[union-attr]


def test_store_survives_a_restart(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    image = store.pull("app:v1")
    again = ImageStore(tmp_path / "node", registry)
    assert again.present("app:v1")
    found = again.get("app:v1")
    assert found is not None and found.id == image.id and found.env == {"V": "1"}


def test_pull_is_atomic(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    # a pull that fails half-way (a file we cannot read) leaves nothing behind
    bad = registry.path / "app" / "v1" / "rootfs" / "app" / "secret"
    bad.write_text("x")
    bad.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(ErrImagePull):
            store.pull("app:v1")
        assert not store.present("app:v1")
        assert list((store.dir / "sha256").iterdir()) == []
    bad.unlink()
    # a crash mid-pull leaves a temporary directory, cleaned on the next start; never a partial image
    (store.dir / ".pull-deadbeef" / "rootfs").mkdir(parents=True)
    ImageStore(tmp_path / "node", registry)
    assert not (store.dir / ".pull-deadbeef").exists()
    # concurrent pulls of one image end with one complete copy
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            store.pull("app:v2")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list((store.dir / "sha256").iterdir())) == 1
    assert [p.name for p in store.dir.iterdir() if p.name.startswith(".pull-")] == []


def test_list_for_node_status(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)
    assert store.list() == []
    v1 = store.pull("app:v1")
    store.pull("tool")
    store.pull("docker.io/library/app:v1")  # same image, same name
    listed = store.list()
    assert len(listed) == 2
    app = next(s for s in listed if s.id == v1.id)
    assert app.names == [f"docker.io/library/app@{v1.id}", "docker.io/library/app:v1"]
    assert app.size_bytes == v1.size_bytes > 0
    assert listed == sorted(listed, key=lambda s: -s.size_bytes)
    store.remove("app:v1")
    assert not store.present("app:v1")
    assert [s.id for s in store.list()] != [v1.id]
    assert not (store.dir / "sha256" / v1.id.removeprefix("sha256:")).exists()


def test_ensure_applies_pull_policy(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "node", registry)

    async def run() -> None:
        with pytest.raises(ErrImageNeverPull):
            await store.ensure("app:v1", "Never")
        image = await store.ensure("app:v1", None)  # IfNotPresent: pulls
        assert image.env == {"V": "1"}
        # IfNotPresent with the image present does not touch the registry
        (registry.path / "app" / "v1" / "image.yaml").unlink()
        assert (await store.ensure("app:v1", None)).id == image.id
        assert (await store.ensure("app:v1", "Never")).id == image.id
        with pytest.raises(ErrImagePull):
            await store.ensure("app:v1", "Always")
        with pytest.raises(InvalidImageName):
            await store.ensure("App:v1")

    asyncio.run(run())
