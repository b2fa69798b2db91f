"""Who is asking: the request scope every write is attributed to, and the audit log.

kplane has no authentication yet, so "who" is what the client says it is: `Client(identity=...)`
sends `x-kplane-identity` (its field manager: "kube-scheduler", "kubelet/node-1",
"kube-controller-manager", "kpctl") and, for command-line clients, `x-kplane-user` (the OS user)
in the gRPC metadata; a request's `field_manager` overrides the identity, like kubectl's
`--field-manager`. The service opens a `RequestInfo` scope around each call (a context variable,
so the registry and storage see it without it being threaded through every signature); the
storage hooks (apiserver/history.py) store it with every write in the same etcd transaction, the
registry stamps `metadata.managedFields` from it, and the audit log writes one line per request.

The audit log is Kubernetes' `audit.k8s.io/v1` Event as JSON lines, at one of Kubernetes' levels:
`None` (off), `Metadata` (who, verb, object, result, the revision written), `Request` (+ the
request body), `RequestResponse` (+ the response object). There is no policy file: one level for
every request. Lines are buffered and flushed at least once a second (and on shutdown), so the
write path pays for a `json.dumps` and a buffered write, never an fsync; the file is rotated at
`max_size_mb` keeping `max_backups` old files (`audit.log.1`, ...).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from kplane.logs import get_logger

log = get_logger(component="apiserver")

IDENTITY_KEY = "x-kplane-identity"
USER_KEY = "x-kplane-user"
# The manager of writes the apiserver makes itself (system namespaces at start-up).
SYSTEM_MANAGER = "kube-apiserver"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")

# gRPC status code name -> the HTTP code Kubernetes' audit log would show.
_HTTP = {"OK": 200, "INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
         "OUT_OF_RANGE": 410, "PERMISSION_DENIED": 403, "UNIMPLEMENTED": 405, "UNAVAILABLE": 503,
         "DEADLINE_EXCEEDED": 504, "INTERNAL": 500, "CANCELLED": 499}


@dataclass(slots=True)
class RequestInfo:
    """One API request: who made it and what it is about."""

    manager: str
    user: str = ""
    verb: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    peer: str = ""
    user_agent: str = ""
    received: float = field(default_factory=time.time)
    audit_id: str = ""

    @property
    def username(self) -> str:
        return self.user or self.manager

    def request_uri(self) -> str:
        """The REST path Kubernetes would have served this request on."""
        base = f"/apis/{self.group}/{self.version or 'v1'}" if self.group else f"/api/{self.version or 'v1'}"
        parts = [base]
        if self.namespace:
            parts.append(f"namespaces/{self.namespace}")
        if self.resource:
            parts.append(self.resource)
        if self.name:
            parts.append(self.name)
        if self.subresource:
            parts.append(self.subresource)
        return "/".join(parts)


_CURRENT: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("kplane_request", default=None)


def current() -> RequestInfo | None:
    """The request being served by this task, if any (None for the apiserver's own writes)."""
    return _CURRENT.get()


def request_info(verb: str, request: Any, metadata: Iterable[tuple[str, Any]] | None, peer: str = "") -> RequestInfo:
    manager = user = agent = ""
    for key, value in metadata or ():
        if key == IDENTITY_KEY:
            manager = str(value)
        elif key == USER_KEY:
            user = str(value)
        elif key == "user-agent":
            agent = str(value)
    field_manager = getattr(request, "field_manager", "")
    info = RequestInfo(manager=field_manager or manager or "unknown", user=user, verb=verb, peer=peer,
                       user_agent=agent)
    ref = getattr(request, "ref", None)
    if ref is not None:
        info.group, info.version, info.resource = ref.group, ref.version, ref.resource
        info.namespace, info.name, info.subresource = ref.namespace, ref.name, ref.subresource
    return info


@dataclass(slots=True)
class Scope:
    info: RequestInfo
    token: contextvars.Token[RequestInfo | None]
    request: Any


def _meta_only_class() -> type[Message]:
    """A message with only `metadata = 1` (ObjectMeta): reads any object's metadata (for the
    revision an audit line reports) without decoding the rest of it."""
    from kplane.api.pb import meta_pb2

    pool = descriptor_pool.Default()
    name = "kplane.audit.MetaOnly"
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))  # type: ignore[no-any-return]
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto(name="kplane/audit_meta_only.proto", package="kplane.audit",
                                             syntax="proto3", dependency=[meta_pb2.DESCRIPTOR.name])
    msg = fdp.message_type.add(name="MetaOnly")
    msg.field.add(name="metadata", number=1, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                  type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                  type_name=".k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))  # type: ignore[no-any-return]


def _micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """Request scopes for every call, and (when a path and a level other than None are given)
    the audit log file."""

    def __init__(self, path: str | Path | None = None, level: str = "Metadata", *, max_size_mb: float = 100,
                 max_backups: int = 3) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown audit level {level!r}: choose one of {', '.join(LEVELS)}")
        self.path = Path(path) if path else None
        self.level = level if self.path is not None else "None"
        self.max_bytes = int(max_size_mb * 1024 * 1024)
        self.max_backups = max_backups
        self._file: IO[str] | None = None
        self._size = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._meta_only: type[Message] | None = None
        self.lines = 0

    @property
    def enabled(self) -> bool:
        return self.level != "None"

    # -- scopes ------------------------------------------------------------------------------

    def begin(self, verb: str, request: Any, context: Any) -> Scope | None:
        """Open the request scope (None when one is already open: a handler that delegates to
        another handler is still one request)."""
        if _CURRENT.get() is not None:
            return None
        try:
            metadata = context.invocation_metadata()
        except Exception:
            metadata = None
        info = request_info(verb, request, metadata)
        if self.enabled:
            info.audit_id = str(uuid.uuid4())
            try:
                info.peer = context.peer() or ""
            except Exception:
                info.peer = ""
        return Scope(info, _CURRENT.set(info), request)

    def end(self, scope: Scope | None, code: str, response: Any = None) -> None:
        if scope is None:
            return
        _CURRENT.reset(scope.token)
        if self.enabled:
            try:
                self._write(self.event(scope.info, code, scope.request, response))
            except Exception as exc:  # the audit log must never fail a request that succeeded
                log.warning("audit log write failed", error=str(exc))

    # -- the record ------------------------------------------------------------------------

    def event(self, info: RequestInfo, code: str, request: Any, response: Any) -> dict[str, Any]:
        http = _HTTP.get(code, 500)
        if http == 200 and info.verb == "create":
            http = 201
        ref: dict[str, Any] = {"resource": info.resource, "namespace": info.namespace, "name": info.name,
                               "apiGroup": info.group, "apiVersion": info.version or "v1"}
        if info.subresource:
            ref["subresource"] = info.subresource
        name, revision = self._name_revision_of(response)
        if name and not ref["name"]:
            ref["name"] = name  # a create names its object in the body, not the request
        if revision:
            ref["resourceVersion"] = revision
        out: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": self.level, "auditID": info.audit_id,
            "stage": "ResponseComplete", "requestURI": info.request_uri(), "verb": info.verb,
            "user": {"username": info.username}, "sourceIPs": [_peer_ip(info.peer)] if info.peer else [],
            "userAgent": info.user_agent or info.manager,
            "objectRef": {k: v for k, v in ref.items() if v},
            "responseStatus": {"metadata": {}, "code": http},
            "requestReceivedTimestamp": _micro(info.received), "stageTimestamp": _micro(time.time()),
        }
        if self.level in ("Request", "RequestResponse"):
            body = _request_body(request)
            if body is not None:
                out["requestObject"] = body
        if self.level == "RequestResponse":
            body = _response_body(response)
            if body is not None:
                out["responseObject"] = body
        return out

    def _name_revision_of(self, response: Any) -> tuple[str, str]:
        """The name and resourceVersion of the object in a response, decoding only its metadata."""
        obj = getattr(response, "object", None)
        if obj is None or not getattr(obj, "value", b""):
            return "", ""
        if self._meta_only is None:
            self._meta_only = _meta_only_class()
        meta = self._meta_only()
        try:
            meta.ParseFromString(obj.value)
        except Exception:
            return "", ""
        return str(meta.metadata.name), str(meta.metadata.resourceVersion)  # type: ignore[attr-defined]

    # -- the file --------------------------------------------------------------------------

    def _open(self) -> IO[str]:
        if self._file is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=64 * 1024)
            self._size = self._file.tell()
        return self._file

    def _write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":")) + "\n"
        f = self._open()
        f.write(line)
        self._size += len(line)
        self.lines += 1
        if self._size >= self.max_bytes:
            self._rotate()
        elif self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_handle = loop.call_later(1.0, self.flush)

    def _rotate(self) -> None:
        assert self.path is not None
        self.close()
        for i in range(self.max_backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.max_backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)

    def flush(self) -> None:
        self._flush_handle = None
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _peer_ip(peer: str) -> str:
    """`ipv4:127.0.0.1:5000` / `ipv6:[::1]:5000` -> the address."""
    _, _, rest = peer.partition(":")
    host, _, _ = rest.rpartition(":")
    return host.strip("[]") or peer


def _request_body(request: Any) -> Any:
    from kplane.api import codec
    from kplane.api.resources import unpack

    if hasattr(request, "patch") and isinstance(getattr(request, "patch", None), str):
        try:
            return json.loads(request.patch)
        except ValueError:
            return request.patch
    body = getattr(request, "body", None)
    if body is not None and hasattr(body, "WhichOneof"):
        which = body.WhichOneof("encoding")
        if which == "json":
            try:
                return json.loads(body.json)
            except ValueError:
                return None
        if which == "object":
            try:
                return codec.to_dict(unpack(body.object)[1])
            except Exception:
                return None
    options = getattr(request, "options", None)
    if options is not None and hasattr(request, "HasField") and request.HasField("options"):
        return codec.to_dict(options)
    return None


def _response_body(response: Any) -> Any:
    from kplane.api import codec
    from kplane.api.resources import unpack

    obj = getattr(response, "object", None)
    if obj is None or not getattr(obj, "type_url", ""):
        return None
    try:
        return codec.to_dict(unpack(obj)[1])
    except Exception:
        return None
