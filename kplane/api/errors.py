"""API errors: Kubernetes Status reasons mapped to gRPC codes, and back.

The server aborts a call with a gRPC status whose details carry a meta/v1 `Status` (reason,
message, every field cause); the client turns it back into the same typed exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyPb
from google.rpc import status_pb2

from kplane.api import field as fe
from kplane.api.pb import meta_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


class APIError(Exception):
    reason = "InternalError"
    http_code = 500
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: Iterable[fe.FieldError] = (),
        raw_causes: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes: list[tuple[str, str, str]] = [(c.reason, c.message(), c.field) for c in causes]
        self.causes.extend(raw_causes)

    def to_status(self) -> meta_pb2.Status:
        status = meta_pb2.Status(status="Failure", message=self.message, reason=self.reason, code=self.http_code)
        if self.kind or self.name or self.causes:
            details = status.details
            details.name = self.name
            details.kind = self.kind
            details.group = self.group
            for reason, message, path in self.causes:
                details.causes.add(reason=reason, message=message, field=path)
        return status

    def to_grpc_status(self) -> status_pb2.Status:
        detail = AnyPb()
        detail.Pack(self.to_status())
        return status_pb2.Status(code=self.grpc_code.value[0], message=self.message, details=[detail])

    def __str__(self) -> str:
        return self.message


class BadRequest(APIError):
    reason = "BadRequest"
    http_code = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class Invalid(APIError):
    reason = "Invalid"
    http_code = 422
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    @classmethod
    def for_object(cls, kind: str, name: str, errors: list[fe.FieldError], group: str = "") -> Invalid:
        """The Kubernetes message: `Deployment.apps "web" is invalid: [a, b]`."""
        qualified = f"{kind}.{group}" if group else kind
        parts = [e.message() for e in errors]
        body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        return cls(f'{qualified} "{name}" is invalid: {body}', kind=kind, name=name, group=group, causes=errors)


class NotFound(APIError):
    reason = "NotFound"
    http_code = 404
    grpc_code = grpc.StatusCode.NOT_FOUND

    @classmethod
    def for_object(cls, group_resource: str, name: str) -> NotFound:
        return cls(f'{group_resource} "{name}" not found', name=name)


class AlreadyExists(APIError):
    reason = "AlreadyExists"
    http_code = 409
    grpc_code = grpc.StatusCode.ALREADY_EXISTS

    @classmethod
    def for_object(cls, group_resource: str, name: str) -> AlreadyExists:
        return cls(f'{group_resource} "{name}" already exists', name=name)


class Conflict(APIError):
    reason = "Conflict"
    http_code = 409
    grpc_code = grpc.StatusCode.ABORTED

    @classmethod
    def for_object(cls, group_resource: str, name: str, why: str) -> Conflict:
        return cls(f'Operation cannot be fulfilled on {group_resource} "{name}": {why}', name=name)


class Expired(APIError):
    reason = "Expired"
    http_code = 410
    grpc_code = grpc.StatusCode.OUT_OF_RANGE


class Forbidden(APIError):
    reason = "Forbidden"
    http_code = 403
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class MethodNotAllowed(APIError):
    reason = "MethodNotAllowed"
    http_code = 405
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class Unavailable(APIError):
    reason = "ServiceUnavailable"
    http_code = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE


class Timeout(APIError):
    reason = "Timeout"
    http_code = 504
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class TooManyRequests(APIError):
    """429: try again later (the eviction API while a PodDisruptionBudget forbids the eviction)."""

    reason = "TooManyRequests"
    http_code = 429
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class InternalError(APIError):
    pass


_BY_REASON: dict[str, type[APIError]] = {
    cls.reason: cls
    for cls in (BadRequest, Invalid, NotFound, AlreadyExists, Conflict, Expired, Forbidden, MethodNotAllowed,
                Unavailable, Timeout, TooManyRequests, InternalError)
}
_BY_CODE: dict[grpc.StatusCode, type[APIError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.INVALID_ARGUMENT: BadRequest,
    grpc.StatusCode.OUT_OF_RANGE: Expired,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.UNIMPLEMENTED: MethodNotAllowed,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooManyRequests,
}


def from_status(status: meta_pb2.Status, fallback_code: grpc.StatusCode | None = None) -> APIError:
    cls = _BY_REASON.get(status.reason) or (_BY_CODE.get(fallback_code) if fallback_code else None) or InternalError
    return cls(
        status.message,
        kind=status.details.kind,
        name=status.details.name,
        group=status.details.group,
        raw_causes=[(c.reason, c.message, c.field) for c in status.details.causes],
    )


def from_rpc_error(err: grpc.RpcError) -> APIError:
    """Rebuild the typed error from a failed call (works for sync and aio errors)."""
    code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
    details: str = err.details() or ""  # type: ignore[attr-defined]
    trailing: Any = err.trailing_metadata() or ()  # type: ignore[attr-defined]
    for key, value in trailing:
        if key == STATUS_DETAILS_KEY:
            rpc = status_pb2.Status.FromString(value)
            for detail in rpc.details:
                status = meta_pb2.Status()
                if detail.Unpack(status):
                    return from_status(status, code)
    cls = _BY_CODE.get(code, Unavailable if code == grpc.StatusCode.UNAVAILABLE else InternalError)
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"the apiserver is unavailable: {details}"
    return cls(details or code.name)
