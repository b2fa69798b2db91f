"""Field errors: one problem at one field path, rendered the way Kubernetes renders them.

Validation returns *every* error at once; the apiserver turns the list into an Invalid status
(gRPC INVALID_ARGUMENT) whose causes carry `field`, `reason` and `message`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

# Cause reasons, as in k8s.io/apimachinery/pkg/util/validation/field (ErrorType.String()).
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
TYPE_INVALID = "FieldValueTypeInvalid"
UNKNOWN_FIELD = "FieldValueUnknown"

_NO_VALUE = object()


@dataclass(frozen=True)
class FieldError:
    """One field error. `field` is a JSON path like `spec.template.spec.containers[0].image`."""

    reason: str
    field: str
    detail: str = ""
    value: Any = dataclasses.field(default=_NO_VALUE, compare=False)
    supported: tuple[str, ...] = ()

    def message(self) -> str:
        """The text Kubernetes prints: `spec.replicas: Invalid value: -1: must be >= 0`."""
        if self.reason == UNKNOWN_FIELD:
            text = f'unknown field "{self.field}"'
            return f"{text}, {self.detail}" if self.detail else text
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def body(self) -> str:
        if self.reason == REQUIRED:
            return "Required value" + (f": {self.detail}" if self.detail else "")
        if self.reason == UNKNOWN_FIELD:
            return "unknown field" + (f": {self.detail}" if self.detail else "")
        if self.reason == NOT_SUPPORTED:
            text = f"Unsupported value: {_render(self.value)}"
            if self.supported:
                text += ": supported values: " + ", ".join(json.dumps(s) for s in self.supported)
            return text
        label = {
            INVALID: "Invalid value",
            DUPLICATE: "Duplicate value",
            FORBIDDEN: "Forbidden",
            TOO_LONG: "Too long",
            TOO_MANY: "Too many",
            NOT_FOUND: "Not found",
            TYPE_INVALID: "Invalid value",
        }.get(self.reason, self.reason)
        parts = [label]
        if self.value is not _NO_VALUE and self.reason not in (FORBIDDEN,):
            parts.append(_render(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)


def _render(value: Any) -> str:
    if value is _NO_VALUE:
        return ""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, path, detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(INVALID, path, detail, value)


def not_supported(path: str, value: Any, supported: list[str] | tuple[str, ...]) -> FieldError:
    return FieldError(NOT_SUPPORTED, path, "", value, tuple(supported))


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, path, "", value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, path, detail)


def too_long(path: str, value: Any, max_length: int) -> FieldError:
    return FieldError(TOO_LONG, path, f"must have at most {max_length} bytes", value)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(TYPE_INVALID, path, detail, value)


def unknown_field(path: str) -> FieldError:
    return FieldError(UNKNOWN_FIELD, path, "")
