"""`kpctl explain`: the documentation of a resource or one of its fields, laid out like kubectl's.

kubectl reads the server's OpenAPI document; kplane's schema is its protobuf messages, so this
module walks the generated descriptors (`ResourceType.message.DESCRIPTOR`) for structure and reads
the proto comments from `kplane/api/pb/schema.binpb`, a FileDescriptorSet compiled with
`--include_source_info`. The layout follows kubectl's plaintext template
(`k8s.io/kubectl/pkg/explain/v2/templates/plaintext.tmpl`):

    GROUP:      apps
    KIND:       Deployment
    VERSION:    v1

    FIELD: strategy <DeploymentStrategy>

    DESCRIPTION:
        How old pods are replaced by new ones.
        DeploymentStrategy: RollingUpdate (default) or Recreate.

    FIELDS:
      rollingUpdate\t<RollingUpdateDeployment>
        RollingUpdateDeployment bounds a rolling update.

      type\t<string>

Type names are the ones Kubernetes shows for the JSON form, not the protobuf ones: Time is
`<string>`, Quantity and IntOrString keep their names, `map<string, X>` is `<map[string]X>`,
`repeated X` is `<[]X>`, every integer is `<integer>`. Fields are listed in byte order of their
names, as kubectl does.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources as importlib_resources
from typing import cast

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from kplane.api import resources
from kplane.api.codec import FIELDS_V1, INT_OR_STRING, QUANTITY, RAW_EXTENSION_SUFFIX, TIMESTAMP

__all__ = ["ExplainError", "explain"]

# Width kubectl wraps descriptions at (`wrap 76 | indent 4`).
_WRAP = 76

# FileDescriptorProto.message_type, DescriptorProto.field, DescriptorProto.nested_type.
_FILE_MESSAGE = 4
_MSG_FIELD = 2
_MSG_NESTED = 3

# The two fields every object has in JSON but no proto message declares (kubectl's wording).
_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)

_INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


class ExplainError(Exception):
    """A resource or field path that cannot be explained (the message is kubectl's wording)."""


# --------------------------------------------------------------------------------------------
# Comments from the descriptor set


@dataclass(frozen=True)
class _Comments:
    """Proto comments by message full name and by (message full name, field name)."""

    messages: dict[str, str]
    fields: dict[tuple[str, str], str]


def _clean_comment(raw: str) -> str:
    """Join a `//` comment's lines into paragraphs (lines joined by spaces, blank lines kept)."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in raw.splitlines():
        text = line.strip()
        if text:
            current.append(text)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def _walk_messages(
    prefix: str, messages: list[descriptor_pb2.DescriptorProto], path: tuple[int, ...], field_number: int
) -> Iterator[tuple[tuple[int, ...], descriptor_pb2.DescriptorProto, str]]:
    """Every message (nested ones too) with its source-info path and full name."""
    for index, message in enumerate(messages):
        full_name = f"{prefix}.{message.name}" if prefix else message.name
        message_path = (*path, field_number, index)
        yield message_path, message, full_name
        yield from _walk_messages(full_name, list(message.nested_type), message_path, _MSG_NESTED)


@functools.cache
def _comments() -> _Comments:
    """Parse schema.binpb once per process (lazily, on the first explain)."""
    data = importlib_resources.files("kplane.api.pb").joinpath("schema.binpb").read_bytes()
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(data)
    messages: dict[str, str] = {}
    fields: dict[tuple[str, str], str] = {}
    for file in fds.file:
        by_path: dict[tuple[int, ...], str] = {}
        for location in file.source_code_info.location:
            text = location.leading_comments or location.trailing_comments
            if text:
                by_path[tuple(location.path)] = _clean_comment(text)
        for path, message, full_name in _walk_messages(
            file.package, list(file.message_type), (), _FILE_MESSAGE
        ):
            if path in by_path:
                messages[full_name] = by_path[path]
            for index, field in enumerate(message.field):
                comment = by_path.get((*path, _MSG_FIELD, index))
                if comment:
                    fields[(full_name, field.name)] = comment
    return _Comments(messages, fields)


# --------------------------------------------------------------------------------------------
# The schema model: a field as the JSON form shows it


@dataclass(frozen=True)
class _Field:
    name: str
    type_name: str  # what goes between < and >
    description: str
    # The message whose fields sit below this one (the element type of a list, the value type of a
    # map), or None for scalars and the opaque Kubernetes types (Time, Quantity, IntOrString, ...).
    children: Descriptor | None


def _message_type(fd: FieldDescriptor) -> Descriptor:
    """The message type of a TYPE_MESSAGE field."""
    message = fd.message_type
    if message is None:
        raise TypeError(f"field {fd.full_name} is not a message field")
    return message


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and bool(fd.message_type.GetOptions().map_entry)


def _is_opaque(message: Descriptor) -> bool:
    """Messages that render as a JSON scalar or an arbitrary JSON document, not as an object."""
    full = message.full_name
    return full in (TIMESTAMP, QUANTITY, INT_OR_STRING, FIELDS_V1) or full.endswith(RAW_EXTENSION_SUFFIX)


def _element_type_name(fd: FieldDescriptor) -> str:
    """The Kubernetes name of one value of `fd` (ignoring repeated/map)."""
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        message = _message_type(fd)
        return "string" if message.full_name == TIMESTAMP else str(message.name)
    if fd.type in _INTEGER_TYPES:
        return "integer"
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return "boolean"
    if fd.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return "number"
    # string, bytes (base64) and enums (Kubernetes enums are strings)
    return "string"


def _element_children(fd: FieldDescriptor) -> Descriptor | None:
    if fd.type != FieldDescriptor.TYPE_MESSAGE:
        return None
    message = _message_type(fd)
    return None if _is_opaque(message) else message


def _field(owner: Descriptor, fd: FieldDescriptor) -> _Field:
    description = _comments().fields.get((owner.full_name, fd.name), "")
    if _is_map(fd):
        value_fd = _message_type(fd).fields_by_name["value"]
        return _Field(
            fd.json_name,
            f"map[string]{_element_type_name(value_fd)}",
            description,
            _element_children(value_fd),
        )
    type_name = _element_type_name(fd)
    if fd.is_repeated:
        type_name = f"[]{type_name}"
    return _Field(fd.json_name, type_name, description, _element_children(fd))


def _fields(message: Descriptor, *, top_level: bool = False) -> dict[str, _Field]:
    """The fields of `message` by JSON name (plus apiVersion and kind for a resource's root)."""
    out = {fd.json_name: _field(message, fd) for fd in message.fields}
    if top_level:
        out.setdefault("apiVersion", _Field("apiVersion", "string", _API_VERSION_DOC, None))
        out.setdefault("kind", _Field("kind", "string", _KIND_DOC, None))
    return out


def _summary(field: _Field) -> str:
    """The text under a field in the FIELDS list: its comment, else its message type's comment."""
    if field.description:
        return field.description
    if field.children is not None:
        return _comments().messages.get(field.children.full_name, "")
    return ""


def _full_description(field: _Field) -> str:
    """The DESCRIPTION of an explained field: its comment, then its type's (as kubectl appends)."""
    parts = [field.description]
    if field.children is not None:
        parts.append(_comments().messages.get(field.children.full_name, ""))
    return "\n".join(part for part in parts if part)


# --------------------------------------------------------------------------------------------
# Rendering


def _wrap(text: str, width: int, indent: int) -> list[str]:
    """Wrap each line of `text` at `width` and indent it; blank lines stay blank."""
    pad = " " * indent
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            lines.append("")
            continue
        wrapped = textwrap.wrap(line, width=width, break_long_words=False, break_on_hyphens=False)
        lines.extend(pad + part for part in wrapped)
    return lines


def _field_list(message: Descriptor, *, top_level: bool) -> list[str]:
    lines: list[str] = []
    fields = _fields(message, top_level=top_level)
    for name in sorted(fields):
        field = fields[name]
        lines.append(f"  {field.name}\t<{field.type_name}>")
        lines.extend(_wrap(_summary(field), _WRAP, 4))
        lines.append("")
    return lines


def _field_tree(message: Descriptor, *, top_level: bool, level: int, ancestors: frozenset[str]) -> list[str]:
    """kubectl's `--recursive` list: names and types only, two more spaces per level."""
    lines: list[str] = []
    fields = _fields(message, top_level=top_level)
    pad = "  " * level
    for name in sorted(fields):
        field = fields[name]
        lines.append(f"{pad}{field.name}\t<{field.type_name}>")
        child = field.children
        if child is not None and child.full_name not in ancestors:
            lines.extend(
                _field_tree(child, top_level=False, level=level + 1, ancestors=ancestors | {child.full_name})
            )
    return lines


def _resolve_resource(parts: list[str], api_version: str) -> tuple[resources.ResourceType, list[str]]:
    """The resource named by the longest prefix of `parts` (`deployments.apps.spec` works too)."""
    found: tuple[resources.ResourceType, list[str]] | None = None
    # Like kubectl: with --api-version only the first segment names the resource.
    candidates = [parts[:1]] if api_version else [parts[:i] for i in range(len(parts), 0, -1)]
    for prefix in candidates:
        try:
            found = resources.resolve(".".join(prefix)), parts[len(prefix) :]
            break
        except resources.UnknownResource:
            continue
    if found is None:
        raise ExplainError(f'the server doesn\'t have a resource type "{parts[0]}"')
    rt, rest = found
    if api_version and api_version != rt.api_version:
        group, _, version = api_version.rpartition("/")
        matches = [
            r
            for r in resources.RESOURCES
            if r.plural == rt.plural and r.group == group and r.version == version
        ]
        if not matches:
            raise ExplainError(
                f'the server doesn\'t have a resource type "{rt.plural}" in group version "{api_version}"'
            )
        rt = matches[0]
    return rt, rest


def explain(path: str, *, recursive: bool = False, api_version: str = "") -> str:
    """Document `<resource>[.<field>...]` like `kubectl explain`; the text ends with a newline.

    Raises ExplainError for an unknown resource or field.
    """
    parts = path.strip().split(".")
    if not parts or not all(parts):
        raise ExplainError(f'invalid resource path "{path}": expected <resource>[.<field>...]')
    rt, field_path = _resolve_resource(parts, api_version.strip())

    root = cast(Descriptor, rt.message.DESCRIPTOR)
    message: Descriptor | None = root
    field: _Field | None = None
    for depth, name in enumerate(field_path):
        if message is None:
            raise ExplainError(f'field "{name}" does not exist')
        fields = _fields(message, top_level=depth == 0)
        if name not in fields:
            raise ExplainError(f'field "{name}" does not exist')
        field = fields[name]
        message = field.children

    lines: list[str] = []
    if rt.group:
        lines.append(f"GROUP:      {rt.group}")
    lines.append(f"KIND:       {rt.kind}")
    lines.append(f"VERSION:    {rt.version}")
    lines.append("")
    if field is None:
        description = _comments().messages.get(root.full_name, "")
    else:
        lines.append(f"FIELD: {field.name} <{field.type_name}>")
        lines.append("")
        description = _full_description(field)
    lines.append("DESCRIPTION:")
    lines.extend(_wrap(description, _WRAP, 4))
    lines.append("")
    if message is not None:
        body = (
            _field_tree(message, top_level=field is None, level=1, ancestors=frozenset({message.full_name}))
            if recursive
            else _field_list(message, top_level=field is None)
        )
        if body:
            lines.append("FIELDS:")
            lines.extend(body)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"
