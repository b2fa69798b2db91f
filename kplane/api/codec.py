"""JSON <-> protobuf codec with Kubernetes' JSON conventions.

The proto3 JSON mapping is close to Kubernetes' JSON (same camelCase names) but not equal, so this
module walks the message descriptors itself:

* int64 renders as a JSON number (proto3 JSON would render a string);
* `Timestamp` renders with second precision (`2026-11-21T22:01:40Z`), MicroTime fields with
  microseconds;
* `Quantity` is a canonical string (`"500m"`), `IntOrString` is a number or a string,
  `FieldsV1`/`RawExtension` are inline JSON, bytes are base64;
* decoding is strict and reports *every* problem with its full path at once: unknown fields
  (`spec.template.spec.cantainers`, with a "did you mean" hint) and wrong types
  (`spec.replicas: Invalid value: "three": expected an integer`).

Scalar fields are proto3 `optional` (explicit presence), so "set to zero" and "unset" differ and
render as Kubernetes renders them.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kplane.api import field as fe

M = TypeVar("M", bound=Message)
Descriptor = Any  # protobuf's upb and pure-python descriptor types differ; treat them alike

TIMESTAMP = "google.protobuf.Timestamp"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
FIELDS_V1 = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
RAW_EXTENSION_SUFFIX = ".RawExtension"

# MicroTime fields (rendered with microseconds), by "<message full name>.<field>".
MICROTIME_FIELDS = frozenset(
    {
        "k8s.io.api.coordination.v1.LeaseSpec.acquireTime",
        "k8s.io.api.coordination.v1.LeaseSpec.renewTime",
        "k8s.io.api.core.v1.Event.eventTime",
        "k8s.io.api.core.v1.EventSeries.lastObservedTime",
    }
)

_INT32 = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32)
_INT64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64)
_UINT32 = (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32)
_UINT64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_RANGES = {
    **dict.fromkeys(_INT32, (-(2**31), 2**31 - 1, "int32")),
    **dict.fromkeys(_INT64, (-(2**63), 2**63 - 1, "int64")),
    **dict.fromkeys(_UINT32, (0, 2**32 - 1, "uint32")),
    **dict.fromkeys(_UINT64, (0, 2**64 - 1, "uint64")),
}


class DecodeError(ValueError):
    """A document that does not fit the schema; `errors` holds every field problem."""

    def __init__(self, errors: list[fe.FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(e.message() for e in errors))


# --------------------------------------------------------------------------------------------
# Timestamps


def format_time(ts: Timestamp, micro: bool = False) -> str:
    dt = datetime.fromtimestamp(ts.seconds, tz=UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        text += f".{ts.nanos // 1000:06d}"
    return text + "Z"


def parse_time(value: str) -> Timestamp:
    """RFC 3339 (`2026-11-21T22:01:40Z`, fractional seconds and offsets allowed)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("missing time zone")
    ts = Timestamp()
    ts.FromDatetime(dt.astimezone(UTC))
    return ts


def now_timestamp() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


# --------------------------------------------------------------------------------------------
# Encoding: message -> dict


_ONE, _REPEATED, _MAP = 0, 1, 2
# fd.full_name -> (json name, cardinality, value converter or None for identity)
_ENC_PLAN: dict[str, tuple[str, int, Callable[[Any], Any] | None]] = {}


def _enc_plan(fd: Any, owner: Any) -> tuple[str, int, Callable[[Any], Any] | None]:
    plan = _ENC_PLAN.get(fd.full_name)
    if plan is None:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            plan = (fd.json_name, _MAP, _value_encoder(value_fd, owner))
        elif fd.is_repeated:
            plan = (fd.json_name, _REPEATED, _value_encoder(fd, owner))
        else:
            plan = (fd.json_name, _ONE, _value_encoder(fd, owner))
        _ENC_PLAN[fd.full_name] = plan
    return plan


def _value_encoder(fd: Any, owner: Any) -> Callable[[Any], Any] | None:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return lambda value: _encode_value(fd, value, owner)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode("ascii")
    return None


def _field_index(item: tuple[Any, Any]) -> int:
    return int(item[0].index)


def json_object(text: str, what: str = "the request body") -> dict[str, Any]:
    """``text`` parsed as a JSON object; anything else is a BadRequest naming ``what``."""
    from kplane.api import errors as api

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise api.BadRequest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise api.BadRequest(f"{what} must be a JSON object")
    return data


def to_dict(msg: Message) -> dict[str, Any]:
    """Render a message as Kubernetes JSON (a dict), omitting unset fields, in declaration order
    (which follows the Go struct order, as Kubernetes renders JSON)."""
    out: dict[str, Any] = {}
    descriptor = msg.DESCRIPTOR
    fields = msg.ListFields()
    if len(fields) > 1:
        fields = sorted(fields, key=_field_index)
    for fd, value in fields:
        name, cardinality, conv = _enc_plan(fd, descriptor)
        if cardinality == _MAP:
            keys = sorted(value)
            out[name] = {k: conv(value[k]) for k in keys} if conv else {k: value[k] for k in keys}
        elif cardinality == _REPEATED:
            out[name] = [conv(v) for v in value] if conv else list(value)
        else:
            out[name] = conv(value) if conv else value
    return out


def _encode_value(fd: Any, value: Any, owner: Descriptor) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        full = fd.message_type.full_name
        if full == TIMESTAMP:
            return format_time(value, micro=f"{owner.full_name}.{fd.name}" in MICROTIME_FIELDS)
        if full == QUANTITY:
            return value.string
        if full == INT_OR_STRING:
            return value.strVal if value.type == 1 else value.intVal
        if full == FIELDS_V1 or full.endswith(RAW_EXTENSION_SUFFIX):
            raw = value.Raw if full == FIELDS_V1 else value.raw
            return json.loads(raw) if raw else {}
        return to_dict(value)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if fd.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return value
    return value


# --------------------------------------------------------------------------------------------
# Decoding: dict -> message


def from_dict(data: Any, msg_cls: type[M], path: str = "", *, ignore: frozenset[str] = frozenset()) -> M:
    """Decode a Kubernetes JSON dict into `msg_cls`; raise DecodeError listing every problem."""
    msg = msg_cls()
    errors: list[fe.FieldError] = []
    if not isinstance(data, dict):
        errors.append(fe.type_invalid(path or "<root>", data, "expected an object"))
    else:
        _decode_into(msg, data, path, errors, ignore)
    if errors:
        raise DecodeError(errors)
    return msg


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_FIELD_INDEX: dict[str, dict[str, Any]] = {}


def _fields_by_json_name(descriptor: Descriptor) -> dict[str, Any]:
    index = _FIELD_INDEX.get(descriptor.full_name)
    if index is None:
        index = {fd.json_name: fd for fd in descriptor.fields}
        _FIELD_INDEX[descriptor.full_name] = index
    return index


def _decode_into(
    msg: Message, data: dict[str, Any], path: str, errors: list[fe.FieldError], ignore: frozenset[str] = frozenset()
) -> None:
    descriptor = msg.DESCRIPTOR
    fields = _fields_by_json_name(descriptor)
    msg.SetInParent()
    for key, value in data.items():
        if key in ignore:
            continue
        fd = fields.get(key)
        if fd is None:
            # proto field names are accepted too (they equal the JSON names except for json_name overrides)
            fd = descriptor.fields_by_name.get(key)
        sub = _join(path, str(key))
        if fd is None:
            hint = difflib.get_close_matches(str(key), list(fields), n=1)
            err = fe.unknown_field(sub)
            if hint:
                err = fe.FieldError(fe.UNKNOWN_FIELD, sub, f'did you mean "{hint[0]}"?')
            errors.append(err)
            continue
        if value is None:
            continue  # JSON null leaves the field unset, as in Kubernetes
        kind = _dec_kind(fd)
        if kind == _D_SCALAR:
            scalar = _decode_scalar(fd, value, sub, errors)
            if scalar is not _INVALID:
                setattr(msg, fd.name, scalar)
        elif kind == _D_MSG:
            if isinstance(value, dict):
                _decode_into(getattr(msg, fd.name), value, sub, errors)
            else:
                errors.append(fe.type_invalid(sub, value, "expected an object"))
        elif kind == _D_MAP:
            _decode_map(msg, fd, value, sub, errors)
        elif kind == _D_SPECIAL:
            special = _decode_special(fd, value, sub, errors, owner=descriptor)
            if special is not None:
                getattr(msg, fd.name).CopyFrom(special)
        else:
            if not isinstance(value, list):
                errors.append(fe.type_invalid(sub, value, "expected a list"))
                continue
            target = getattr(msg, fd.name)
            for i, item in enumerate(value):
                if kind == _D_REP_SCALAR:
                    scalar = _decode_scalar(fd, item, f"{sub}[{i}]", errors)
                    if scalar is not _INVALID:
                        target.append(scalar)
                elif kind == _D_REP_MSG:
                    if not isinstance(item, dict):
                        errors.append(fe.type_invalid(f"{sub}[{i}]", item, "expected an object"))
                        continue
                    _decode_into(target.add(), item, f"{sub}[{i}]", errors)
                else:
                    special = _decode_special(fd, item, f"{sub}[{i}]", errors)
                    if special is not None:
                        target.add().CopyFrom(special)


_D_SCALAR, _D_MSG, _D_MAP, _D_SPECIAL, _D_REP_SCALAR, _D_REP_MSG, _D_REP_SPECIAL = range(7)
_DEC_KIND: dict[str, int] = {}


def _dec_kind(fd: Any) -> int:
    kind = _DEC_KIND.get(fd.full_name)
    if kind is None:
        is_msg = fd.type == FieldDescriptor.TYPE_MESSAGE
        if is_msg and fd.message_type.GetOptions().map_entry:
            kind = _D_MAP
        elif fd.is_repeated:
            kind = (_D_REP_SPECIAL if _is_special(fd) else _D_REP_MSG) if is_msg else _D_REP_SCALAR
        else:
            kind = (_D_SPECIAL if _is_special(fd) else _D_MSG) if is_msg else _D_SCALAR
        _DEC_KIND[fd.full_name] = kind
    return kind


def _decode_map(msg: Message, fd: Any, value: Any, path: str, errors: list[fe.FieldError]) -> None:
    if not isinstance(value, dict):
        errors.append(fe.type_invalid(path, value, "expected an object (a map)"))
        return
    value_fd = fd.message_type.fields_by_name["value"]
    target = getattr(msg, fd.name)
    for k, v in value.items():
        item_path = f"{path}[{k}]" if not str(k).isidentifier() else f"{path}.{k}"
        if v is None:
            if value_fd.type == FieldDescriptor.TYPE_STRING:
                target[str(k)] = ""
            continue
        if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_special(value_fd):
                special = _decode_special(value_fd, v, item_path, errors)
                if special is not None:
                    target[str(k)].CopyFrom(special)
            elif isinstance(v, dict):
                _decode_into(target[str(k)], v, item_path, errors)
            else:
                errors.append(fe.type_invalid(item_path, v, "expected an object"))
        else:
            scalar = _decode_scalar(value_fd, v, item_path, errors)
            if scalar is not _INVALID:
                target[str(k)] = scalar


def _is_special(fd: Any) -> bool:
    full = fd.message_type.full_name
    return full in (TIMESTAMP, QUANTITY, INT_OR_STRING, FIELDS_V1) or full.endswith(RAW_EXTENSION_SUFFIX)


def _decode_special(
    fd: Any, value: Any, path: str, errors: list[fe.FieldError], owner: Descriptor | None = None
) -> Message | None:
    cls = _message_class(fd.message_type)
    full = fd.message_type.full_name
    if full == TIMESTAMP:
        if not isinstance(value, str):
            errors.append(fe.type_invalid(path, value, "expected an RFC 3339 time string"))
            return None
        try:
            return parse_time(value)
        except ValueError:
            errors.append(fe.invalid(path, value, "expected an RFC 3339 time such as 2026-11-21T22:01:40Z"))
            return None
    if full == QUANTITY:

        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            errors.append(fe.type_invalid(path, value, "expected a quantity string such as \"500m\" or \"1Gi\""))
            return None
        text = value if isinstance(value, str) else (str(int(value)) if float(value).is_integer() else repr(value))
        try:
            canonical = _canonical_quantity(text.strip())
        except ValueError as exc:
            errors.append(fe.invalid(path, value, str(exc)))
            return None
        q = cls()
        q.string = canonical  # type: ignore[attr-defined]
        return q
    if full == INT_OR_STRING:
        ios = cls()
        if isinstance(value, bool):
            errors.append(fe.type_invalid(path, value, "expected an integer or a string"))
            return None
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            ival = int(value)
            if not -(2**31) <= ival < 2**31:
                errors.append(fe.invalid(path, value, "integer out of range for int32"))
                return None
            ios.type = 0  # type: ignore[attr-defined]
            ios.intVal = ival  # type: ignore[attr-defined]
            return ios
        if isinstance(value, str):
            ios.type = 1  # type: ignore[attr-defined]
            ios.strVal = value  # type: ignore[attr-defined]
            return ios
        errors.append(fe.type_invalid(path, value, "expected an integer or a string"))
        return None
    # FieldsV1 / RawExtension: any JSON value, kept verbatim.
    raw = cls()
    encoded = json.dumps(value, separators=(",", ":"), sort_keys=False).encode()
    if full == FIELDS_V1:
        raw.Raw = encoded  # type: ignore[attr-defined]
    else:
        raw.raw = encoded  # type: ignore[attr-defined]
    return raw


@functools.lru_cache(maxsize=4096)
def _canonical_quantity(text: str) -> str:
    from kplane.api.quantity import Quantity

    return str(Quantity.parse(text))


_CLASS_CACHE: dict[str, type[Message]] = {}



def _message_class(descriptor: Descriptor) -> type[Message]:
    cls = _CLASS_CACHE.get(descriptor.full_name)
    if cls is None:
        from google.protobuf import message_factory

        cls = message_factory.GetMessageClass(descriptor)
        _CLASS_CACHE[descriptor.full_name] = cls
    return cls


_INVALID = object()


def _decode_scalar(fd: Any, value: Any, path: str, errors: list[fe.FieldError]) -> Any:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            errors.append(fe.type_invalid(path, value, f"expected a string, got {_json_type(value)}"))
            return _INVALID
        return value
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            errors.append(fe.type_invalid(path, value, f"expected a boolean, got {_json_type(value)}"))
            return _INVALID
        return value
    if t in _RANGES:
        lo, hi, tname = _RANGES[t]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(fe.type_invalid(path, value, f"expected an integer ({tname}), got {_json_type(value)}"))
            return _INVALID
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                errors.append(fe.type_invalid(path, value, f"expected an integer ({tname})"))
                return _INVALID
            value = int(value)
        if not lo <= value <= hi:
            errors.append(fe.invalid(path, value, f"out of range for {tname}"))
            return _INVALID
        return value
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(fe.type_invalid(path, value, f"expected a number, got {_json_type(value)}"))
            return _INVALID
        return float(value)
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            errors.append(fe.type_invalid(path, value, "expected a base64 string"))
            return _INVALID
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            errors.append(fe.invalid(path, "<redacted>" if len(value) > 64 else value, "illegal base64 data"))
            return _INVALID
    errors.append(fe.type_invalid(path, value, f"unsupported field type {t}"))
    return _INVALID


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def copy_message(msg: M) -> M:
    """A deep copy (cached objects are read-only: copy before changing)."""
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def transform(msg: M, fn: Callable[[dict[str, Any]], None]) -> M:
    """Apply a dict-level change to a message (render, mutate, decode)."""
    data = to_dict(msg)
    fn(data)
    return from_dict(data, type(msg))
