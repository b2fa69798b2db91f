"""The audit log's records and file handling, write records, keys and lease buckets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from apiserver import audit
from apiserver.history import decode_record, encode_record, parse_key
from apiserver.leases import reuse_window
from kplane.api.pb import api_pb2
from kplane.api.resources import object_from_dict, pack


class FakeContext:
    def __init__(self, *metadata: tuple[str, str]) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50123"


def update_request() -> api_pb2.UpdateRequest:
    return api_pb2.UpdateRequest(ref=api_pb2.ResourceRef(group="apps", version="v1", resource="deployments",
                                                         namespace="prod", name="web", subresource="scale"),
                                 body=api_pb2.Body(json='{"spec": {"replicas": 3}}'))


def test_request_info_reads_identity_user_and_field_manager() -> None:
    """Identity and user come from the metadata; a request's field_manager overrides the identity."""
    info = audit.request_info("update", update_request(), (("x-kplane-identity", "kpctl"),
                                                           ("x-kplane-user", "alice")))
    assert (info.manager, info.user, info.username) == ("kpctl", "alice", "alice")
    assert info.request_uri() == "/apis/apps/v1/namespaces/prod/deployments/web/scale"
    req = api_pb2.CreateRequest(ref=api_pb2.ResourceRef(resource="pods", namespace="a"), field_manager="helm")
    assert audit.request_info("create", req, (("x-kplane-identity", "kpctl"),)).manager == "helm"
    assert audit.request_info("get", api_pb2.RetentionRequest(), None).manager == "unknown"


def test_metadata_level_record_is_a_kubernetes_audit_event(tmp_path: Path) -> None:
    """One JSON line per request: who, verb, objectRef with the revision written, the HTTP code."""
    log = audit.AuditLog(tmp_path / "audit.log", "Metadata")
    request = update_request()
    scope = log.begin("update", request, FakeContext(("x-kplane-identity", "kpctl"), ("x-kplane-user", "alice")))
    assert audit.current() is scope.info  # type: ignore[union-attr]
    _, msg = object_from_dict({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "42"}})
    from kplane.api.resources import resolve

    log.end(scope, "OK", api_pb2.ObjectResponse(object=pack(resolve("deployments"), msg)))
    assert audit.current() is None
    log.close()
    [line] = (tmp_path / "audit.log").read_text().splitlines()
    event = json.loads(line)
    assert event["kind"] == "Event" and event["apiVersion"] == "audit.k8s.io/v1" and event["level"] == "Metadata"
    assert event["verb"] == "update" and event["user"] == {"username": "alice"}
    assert event["objectRef"] == {"resource": "deployments", "namespace": "prod", "name": "web", "apiGroup": "apps",
                                  "apiVersion": "v1", "subresource": "scale", "resourceVersion": "42"}
    assert event["responseStatus"]["code"] == 200 and event["sourceIPs"] == ["127.0.0.1"]
    assert "requestObject" not in event


@pytest.mark.parametrize(("level", "has_request", "has_response"),
                         [("Request", True, False), ("RequestResponse", True, True)])
def test_request_levels_add_bodies(tmp_path: Path, level: str, has_request: bool, has_response: bool) -> None:
    """Request adds the request body, RequestResponse the response object too."""
    log = audit.AuditLog(tmp_path / "a.log", level)
    scope = log.begin("update", update_request(), FakeContext())
    from kplane.api.resources import resolve

    _, msg = object_from_dict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    log.end(scope, "NOT_FOUND", api_pb2.ObjectResponse(object=pack(resolve("configmaps"), msg)))
    log.close()
    event = json.loads((tmp_path / "a.log").read_text())
    assert event["responseStatus"]["code"] == 404
    assert ("requestObject" in event) == has_request and ("responseObject" in event) == has_response
    if has_request:
        assert event["requestObject"] == {"spec": {"replicas": 3}}


def test_none_level_or_no_path_writes_nothing_but_still_scopes(tmp_path: Path) -> None:
    """Without a file the scope still carries who is asking (writes are attributed either way)."""
    log = audit.AuditLog(None, "RequestResponse")
    assert not log.enabled
    scope = log.begin("create", update_request(), FakeContext(("x-kplane-identity", "kube-scheduler")))
    assert audit.current() is not None and audit.current().manager == "kube-scheduler"  # type: ignore[union-attr]
    nested = log.begin("create", update_request(), FakeContext())
    assert nested is None  # a handler delegating to another is one request
    log.end(scope, "OK")
    with pytest.raises(ValueError, match="unknown audit level"):
        audit.AuditLog(tmp_path / "x", "Everything")


def test_the_log_rotates_keeping_backups(tmp_path: Path) -> None:
    """Past max size the file moves to .1 (older ones shift), at most max_backups kept."""
    path = tmp_path / "audit.log"
    log = audit.AuditLog(path, "Metadata", max_size_mb=0.001, max_backups=2)  # ~1 KB
    for _ in range(12):
        log.end(log.begin("get", update_request(), FakeContext()), "OK")
    log.close()
    assert path.with_name("audit.log.1").exists() and path.with_name("audit.log.2").exists()
    assert not path.with_name("audit.log.3").exists()
    lines = [json.loads(x) for p in tmp_path.iterdir() for x in p.read_text().splitlines()]
    assert all(e["verb"] == "get" for e in lines)


def test_write_records_round_trip() -> None:
    """The record at /kplane/writer: manager, user, verb, subresource and the time in ms."""
    info = audit.RequestInfo(manager="kpctl", user="alice", verb="patch", subresource="status")
    raw = encode_record(info, "update", now=1_795_310_519.7205)
    assert json.loads(raw) == {"m": "kpctl", "v": "patch", "t": 1_795_310_519_720, "u": "alice", "s": "status"}
    record = decode_record(raw)
    assert record is not None
    assert (record.manager, record.user, record.verb, record.subresource) == ("kpctl", "alice", "patch", "status")
    assert record.time.seconds == 1_795_310_519 and record.time.nanos == 720_000_000
    system = decode_record(encode_record(None, "create", now=1.0))
    assert system is not None and system.manager == audit.SYSTEM_MANAGER and system.verb == "create"
    assert decode_record(b"garbage") is None


@pytest.mark.parametrize(("key", "expected"), [
    ("/registry/pods/default/web", ("pods", "default", "web")),
    ("/registry/nodes/node-1", ("nodes", "", "node-1")),
    ("/registry/pods/default", None),
    ("/registry/nosuch/a/b", None),
    ("/kplane/writer", None),
])
def test_parse_key(key: str, expected: Any) -> None:
    """Object keys map back to (resource, namespace, name); anything else is not an object."""
    parsed = parse_key(key)
    assert (None if parsed is None else (parsed.rt.plural, parsed.namespace, parsed.name)) == expected


def test_lease_reuse_window_follows_upstream() -> None:
    """A lease is reused for 5 % of the TTL, at most a minute, at least a second."""
    assert reuse_window(3600) == 60 and reuse_window(600) == 30 and reuse_window(2) == 1
