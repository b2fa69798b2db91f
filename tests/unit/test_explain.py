"""kpctl explain: kubectl's layout, Kubernetes type names, comments from the proto schema, errors."""

from __future__ import annotations

import pytest

from kplane.cli.explain import ExplainError, explain


def _field_line(name: str, type_name: str, indent: int = 2) -> str:
    return f"{' ' * indent}{name}\t<{type_name}>"


def test_top_level_pod() -> None:
    """A core kind has no GROUP line, its message comment as DESCRIPTION and apiVersion/kind added."""
    out = explain("pod")
    lines = out.splitlines()
    assert lines[:4] == ["KIND:       Pod", "VERSION:    v1", "", "DESCRIPTION:"]
    assert lines[4] == "    Pod is a group of containers scheduled together onto one node."
    assert "FIELD:" not in out
    fields = [line for line in lines if line.startswith("  ") and "\t" in line]
    assert fields == [
        _field_line("apiVersion", "string"),
        _field_line("kind", "string"),
        _field_line("metadata", "ObjectMeta"),
        _field_line("spec", "PodSpec"),
        _field_line("status", "PodStatus"),
    ]
    assert "    APIVersion defines the versioned schema of this representation of an object." in lines
    assert out.endswith("\n") and not out.endswith("\n\n")


def test_grouped_field_layout() -> None:
    """A field of a grouped kind prints GROUP/KIND/VERSION, FIELD, the field and type comments, FIELDS."""
    assert explain("deployment.spec.strategy") == (
        "GROUP:      apps\n"
        "KIND:       Deployment\n"
        "VERSION:    v1\n"
        "\n"
        "FIELD: strategy <DeploymentStrategy>\n"
        "\n"
        "DESCRIPTION:\n"
        "    How old pods are replaced by new ones.\n"
        "    DeploymentStrategy: RollingUpdate (default) or Recreate.\n"
        "\n"
        "FIELDS:\n"
        "  rollingUpdate\t<RollingUpdateDeployment>\n"
        "    RollingUpdateDeployment bounds a rolling update.\n"
        "\n"
        "  type\t<string>\n"
    )


@pytest.mark.parametrize(
    ("path", "field_line", "expected_lines"),
    [
        pytest.param(
            "deploy.spec.template.spec.containers",
            "FIELD: containers <[]Container>",
            [
                _field_line("image", "string"),
                _field_line("livenessProbe", "Probe"),
                _field_line("env", "[]EnvVar"),
            ],
            id="repeated-message-field",
        ),
        pytest.param(
            "pods.spec.containers.livenessProbe.httpGet",
            "FIELD: httpGet <HTTPGetAction>",
            [_field_line("path", "string"), _field_line("port", "IntOrString")],
            id="through-repeated-into-flattened-probe-handler",
        ),
        pytest.param(
            "pods.spec.containers.livenessProbe",
            "FIELD: livenessProbe <Probe>",
            [
                _field_line(name, type_name)
                for name, type_name in [
                    ("exec", "ExecAction"),
                    ("httpGet", "HTTPGetAction"),
                    ("tcpSocket", "TCPSocketAction"),
                    ("grpc", "GRPCAction"),
                    ("periodSeconds", "integer"),
                ]
            ],
            id="probe-handlers-are-flat",
        ),
        pytest.param(
            "pods.spec.volumes",
            "FIELD: volumes <[]Volume>",
            [
                _field_line("name", "string"),
                _field_line("emptyDir", "EmptyDirVolumeSource"),
                _field_line("configMap", "ConfigMapVolumeSource"),
            ],
            id="volume-sources-are-flat",
        ),
        pytest.param(
            "deployments.apps.spec.strategy.rollingUpdate",
            "FIELD: rollingUpdate <RollingUpdateDeployment>",
            [_field_line("maxSurge", "IntOrString"), _field_line("maxUnavailable", "IntOrString")],
            id="group-qualified-resource",
        ),
    ],
)
def test_nested_paths(path: str, field_line: str, expected_lines: list[str]) -> None:
    """Paths walk through repeated and singular message fields to the named field's own fields."""
    lines = explain(path).splitlines()
    assert field_line in lines
    for line in expected_lines:
        assert line in lines


@pytest.mark.parametrize(
    ("path", "field_line"),
    [
        pytest.param("po.metadata.labels", "FIELD: labels <map[string]string>", id="map-string-string"),
        pytest.param("secret.data", "FIELD: data <map[string]string>", id="map-string-bytes"),
        pytest.param(
            "po.spec.containers.resources.limits",
            "FIELD: limits <map[string]Quantity>",
            id="map-string-quantity",
        ),
        pytest.param("pod.spec.overhead", "FIELD: overhead <map[string]Quantity>", id="map-in-spec"),
        pytest.param("po.spec.volumes.emptyDir.sizeLimit", "FIELD: sizeLimit <Quantity>", id="quantity"),
        pytest.param(
            "deploy.spec.strategy.rollingUpdate.maxSurge", "FIELD: maxSurge <IntOrString>", id="int-or-string"
        ),
        pytest.param("pod.metadata.creationTimestamp", "FIELD: creationTimestamp <string>", id="timestamp"),
        pytest.param("deploy.spec.replicas", "FIELD: replicas <integer>", id="int32"),
        pytest.param("pod.metadata.generation", "FIELD: generation <integer>", id="int64"),
        pytest.param("deploy.spec.paused", "FIELD: paused <boolean>", id="bool"),
        pytest.param("pod.spec.containers.args", "FIELD: args <[]string>", id="repeated-string"),
        pytest.param("pod.kind", "FIELD: kind <string>", id="kind-is-added"),
    ],
)
def test_type_names(path: str, field_line: str) -> None:
    """Fields are typed with Kubernetes' names, not protobuf's, and leaves have no FIELDS section."""
    out = explain(path)
    assert field_line in out.splitlines()
    assert "FIELDS:" not in out


def test_field_descriptions_come_from_proto_comments() -> None:
    """A field's comment is its description, and an uncommented scalar gets an empty one."""
    lines = explain("pods.spec.containers.livenessProbe").splitlines()
    period = lines.index(_field_line("periodSeconds", "integer"))
    assert lines[period + 1] == "    Defaults to 10."
    initial = lines.index(_field_line("initialDelaySeconds", "integer"))
    assert lines[initial + 1] == ""


def test_long_descriptions_wrap_at_76_columns() -> None:
    """Description lines are wrapped at kubectl's width and indented by four spaces."""
    for line in explain("pod").splitlines():
        if line.startswith("    ") and " " in line.strip():
            assert len(line) <= 4 + 76, line


@pytest.mark.parametrize(
    ("path", "kwargs", "message"),
    [
        pytest.param("pods.spec.cantainers", {}, 'field "cantainers" does not exist', id="unknown-field"),
        pytest.param(
            "deploy.spec.template.spec.containers.imag",
            {},
            'field "imag" does not exist',
            id="unknown-nested-field",
        ),
        pytest.param(
            "pod.metadata.creationTimestamp.seconds",
            {},
            'field "seconds" does not exist',
            id="no-fields-below-timestamp",
        ),
        pytest.param(
            "pod.spec.nodeSelector.disk", {}, 'field "disk" does not exist', id="no-fields-below-map"
        ),
        pytest.param("foo", {}, 'the server doesn\'t have a resource type "foo"', id="unknown-resource"),
        pytest.param(
            "foo.spec", {}, 'the server doesn\'t have a resource type "foo"', id="unknown-resource-with-path"
        ),
        pytest.param(
            "deploy",
            {"api_version": "apps/v2"},
            'the server doesn\'t have a resource type "deployments" in group version "apps/v2"',
            id="unknown-api-version",
        ),
    ],
)
def test_errors(path: str, kwargs: dict[str, str], message: str) -> None:
    """Unknown resources, fields and versions raise ExplainError with kubectl's wording."""
    with pytest.raises(ExplainError) as e:
        explain(path, **kwargs)
    assert str(e.value) == message


def test_api_version_selects_the_served_version() -> None:
    """--api-version naming the served group/version explains the same schema."""
    assert explain("deploy.spec", api_version="apps/v1") == explain("deploy.spec")


@pytest.mark.parametrize(
    ("path", "expected_lines"),
    [
        pytest.param(
            "deployment",
            [
                "  spec\t<DeploymentSpec>",
                "    template\t<PodTemplateSpec>",
                "      spec\t<PodSpec>",
                "        containers\t<[]Container>",
                "          livenessProbe\t<Probe>",
                "            httpGet\t<HTTPGetAction>",
                "              port\t<IntOrString>",
                "  metadata\t<ObjectMeta>",
                "    labels\t<map[string]string>",
            ],
            id="deployment",
        ),
        pytest.param(
            "pods.spec.containers",
            ["  resources\t<ResourceRequirements>", "    limits\t<map[string]Quantity>"],
            id="field",
        ),
    ],
)
def test_recursive_tree(path: str, expected_lines: list[str]) -> None:
    """--recursive prints every nested field with its type, two spaces deeper per level, no descriptions."""
    out = explain(path, recursive=True)
    lines = out.splitlines()
    for line in expected_lines:
        assert line in lines
    fields = lines[lines.index("FIELDS:") + 1 :]
    assert fields and all("\t<" in line for line in fields)


def test_schema_is_parsed_once() -> None:
    """The descriptor set is parsed lazily, once per process."""
    from kplane.cli import explain as module

    explain("pod")
    before = module._comments.cache_info()
    explain("deployment.spec")
    after = module._comments.cache_info()
    assert after.misses == before.misses == 1
