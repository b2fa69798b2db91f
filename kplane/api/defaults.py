"""Per-kind defaulting with Kubernetes semantics, over Kubernetes JSON dicts (mutated in place).

`apply_defaults(kind, obj)` is what the apiserver runs on every create and update before
validation. It follows pkg/apis/{core,apps,batch}/v1/defaults.go and the generated
`SetObjectDefaults_*` walkers (our own code; the upstream files are the reference):

* PodSpec (Pods and every pod template): dnsPolicy ClusterFirst, restartPolicy Always,
  securityContext {}, terminationGracePeriodSeconds 30, schedulerName default-scheduler; every
  container (regular, init, ephemeral): imagePullPolicy (Always for `:latest` or no tag, else
  IfNotPresent), terminationMessagePath /dev/termination-log, terminationMessagePolicy File,
  ports protocol TCP, env fieldRef apiVersion v1, probes (timeoutSeconds 1, periodSeconds 10,
  successThreshold 1, failureThreshold 3; httpGet path "/" and scheme HTTP; also lifecycle
  httpGet hooks); volumes (emptyDir when no source, configMap/secret/downwardAPI/projected
  defaultMode 420, projected token expirationSeconds 3600, hostPath type "", ...).
* Pod only (SetDefaults_Pod; *not* in templates): enableServiceLinks true, container requests
  default to limits, and with hostNetwork every hostPort defaults to its containerPort.
* Workloads: replicas 1; Deployment strategy RollingUpdate 25%/25%, revisionHistoryLimit 10,
  progressDeadlineSeconds 600; DaemonSet RollingUpdate maxUnavailable 1 / maxSurge 0;
  StatefulSet OrderedReady, RollingUpdate partition 0, PVC retention Retain/Retain; Job
  completions/parallelism, backoffLimit 6, completionMode NonIndexed, suspend false,
  podReplacementPolicy; CronJob Allow, suspend false, history limits 3/1; RC selector and labels
  from the template.
* Service: type ClusterIP, sessionAffinity None, ports protocol TCP and targetPort = port,
  internalTrafficPolicy Cluster, externalTrafficPolicy Cluster when externally reachable,
  allocateLoadBalancerNodePorts true for LoadBalancer. In addition (Kubernetes does this in the
  service registry, not in defaults.go): `clusterIP`/`clusterIPs` are kept in sync and a
  non-ExternalName Service gets ipFamilyPolicy SingleStack and ipFamilies from its clusterIP
  (IPv4 when none is allocated yet). Allocating the clusterIP and node ports stays the apiserver's job.
* Namespace: label kubernetes.io/metadata.name, spec.finalizers ["kubernetes"], status.phase Active.
  Secret: type Opaque. Endpoints: ports protocol TCP. Node: status.allocatable = capacity.
  PersistentVolumeClaim: spec.volumeMode Filesystem, status.phase Pending.

Not done here (other parts of the apiserver own them): status.phase Pending for new Pods,
serviceAccountName (admission), default not-ready/unreachable tolerations (admission),
quantity canonicalisation and rounding (the codec).

Two helpers cover what Kubernetes' registry strategies do with defaulting-like effect:
`job_prepare_for_create(obj, uid)` (selector and label generation) and
`service_prepare_for_update(new, old)` (carry allocated IPs and node ports forward).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

JSONDict = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_FILE_MODE = 0o644  # 420
DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS = 10800
DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MAX_INT32 = 2**31 - 1

VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc",
    "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk",
    "storageos", "projected", "scaleIO", "csi", "ephemeral", "image",
)  # fmt: skip

# A docker reference whose last path component carries a tag: `repo:tag`, `host:5000/repo:tag`.
_TAG_RE = re.compile(r":([\w][\w.-]{0,127})$")
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_HOST_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)


# --------------------------------------------------------------------------------------------
# Dict helpers: never raise on a wrong JSON type (validation reports those)


def _sub(obj: JSONDict, name: str) -> JSONDict | None:
    """obj[name] as a dict, created when absent or null; None when it holds another type."""
    value = obj.get(name)
    if value is None:
        value = {}
        obj[name] = value
    return value if isinstance(value, dict) else None


def _peek(obj: Any, name: str) -> JSONDict | None:
    """obj[name] when it is a dict (never created)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    return value if isinstance(value, dict) else None


def _dicts(obj: JSONDict, name: str) -> list[JSONDict]:
    value = obj.get(name)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _default(obj: JSONDict, name: str, value: Any) -> None:
    """Set obj[name] = value when it is absent or null (Go's nil/zero)."""
    if obj.get(name) is None:
        obj[name] = value


def _default_empty(obj: JSONDict, name: str, value: Any) -> None:
    """Set obj[name] = value when absent, null or "" (string fields whose zero value is unset)."""
    if obj.get(name) in (None, ""):
        obj[name] = value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Images


def image_tag(image: str) -> str:
    """The tag `parsers.ParseImageName` yields: "latest" when neither tag nor digest, "" for a digest-only or unparsable reference."""
    if not image or image != image.strip():
        return ""
    name, _, digest = image.partition("@")
    if "@" in image and not digest:
        return ""
    last_slash = name.rfind("/")
    tag_match = _TAG_RE.search(name[last_slash + 1 :])
    tag = tag_match.group(1) if tag_match else ""
    repo = name[: len(name) - len(tag) - 1] if tag else name
    parts = repo.split("/")
    if len(parts) > 1 and (
        "." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0] != parts[0].lower()
    ):
        if not _HOST_RE.match(parts[0]):
            return ""
        parts = parts[1:]
    if not parts or not _REPO_RE.match("/".join(parts)):
        return ""
    if tag:
        return tag
    return "" if digest else "latest"


def default_pull_policy(image: Any) -> str:
    return "Always" if isinstance(image, str) and image_tag(image) == "latest" else "IfNotPresent"


# --------------------------------------------------------------------------------------------
# Pod spec


def _default_http_get(handler: JSONDict | None) -> None:
    action = _peek(handler, "httpGet")
    if action is not None:
        _default_empty(action, "path", "/")
        _default_empty(action, "scheme", "HTTP")


def _default_probe(probe: JSONDict) -> None:
    for name, value in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if probe.get(name) in (None, 0):
            probe[name] = value
    _default_http_get(probe)


def _default_field_ref(holder: JSONDict | None) -> None:
    ref = _peek(holder, "fieldRef")
    if ref is not None:
        _default_empty(ref, "apiVersion", "v1")


def default_container(ctr: JSONDict) -> None:
    """SetDefaults_Container plus the generated walk over ports, env, probes and hooks."""
    if ctr.get("imagePullPolicy") in (None, ""):
        ctr["imagePullPolicy"] = default_pull_policy(ctr.get("image"))
    _default_empty(ctr, "terminationMessagePath", TERMINATION_MESSAGE_PATH)
    _default_empty(ctr, "terminationMessagePolicy", "File")
    for port in _dicts(ctr, "ports"):
        _default_empty(port, "protocol", "TCP")
    for env in _dicts(ctr, "env"):
        _default_field_ref(_peek(env, "valueFrom"))
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _peek(ctr, probe_name)
        if probe is not None:
            _default_probe(probe)
    lifecycle = _peek(ctr, "lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            _default_http_get(_peek(lifecycle, hook))


def _default_items_field_refs(src: JSONDict | None) -> None:
    if src is None:
        return
    for item in _dicts(src, "items"):
        _default_field_ref(item)


def default_volume(vol: JSONDict) -> None:
    """SetDefaults_Volume and the per-source defaults."""
    if all(vol.get(src) is None for src in VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for src_name in ("secret", "configMap", "downwardAPI", "projected"):
        src = _peek(vol, src_name)
        if src is not None:
            _default(src, "defaultMode", DEFAULT_FILE_MODE)
    _default_items_field_refs(_peek(vol, "downwardAPI"))
    projected = _peek(vol, "projected")
    if projected is not None:
        for source in _dicts(projected, "sources"):
            _default_items_field_refs(_peek(source, "downwardAPI"))
            token = _peek(source, "serviceAccountToken")
            if token is not None:
                _default(token, "expirationSeconds", DEFAULT_TOKEN_EXPIRATION_SECONDS)
    host_path = _peek(vol, "hostPath")
    if host_path is not None:
        _default(host_path, "type", "")
    iscsi = _peek(vol, "iscsi")
    if iscsi is not None:
        _default_empty(iscsi, "iscsiInterface", "default")
    rbd = _peek(vol, "rbd")
    if rbd is not None:
        _default_empty(rbd, "pool", "rbd")
        _default_empty(rbd, "user", "admin")
        _default_empty(rbd, "keyring", "/etc/ceph/keyring")
    azure_disk = _peek(vol, "azureDisk")
    if azure_disk is not None:
        _default(azure_disk, "cachingMode", "ReadWrite")
        _default(azure_disk, "fsType", "ext4")
        _default(azure_disk, "readOnly", False)
        _default(azure_disk, "kind", "Shared")
    scale_io = _peek(vol, "scaleIO")
    if scale_io is not None:
        _default_empty(scale_io, "storageMode", "ThinProvisioned")
        _default_empty(scale_io, "fsType", "xfs")
    ephemeral = _peek(vol, "ephemeral")
    template = _peek(ephemeral, "volumeClaimTemplate")
    claim_spec = _peek(template, "spec")
    if claim_spec is not None:
        _default(claim_spec, "volumeMode", "Filesystem")
    image = _peek(vol, "image")
    if image is not None and image.get("pullPolicy") in (None, ""):
        image["pullPolicy"] = default_pull_policy(image.get("reference"))


def default_pod_spec(spec: JSONDict) -> None:
    """SetDefaults_PodSpec (shared by Pods and pod templates) and the nested defaults."""
    _default_empty(spec, "dnsPolicy", "ClusterFirst")
    _default_empty(spec, "restartPolicy", "Always")
    _default(spec, "securityContext", {})
    _default(spec, "terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS)
    _default_empty(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for vol in _dicts(spec, "volumes"):
        default_volume(vol)
    for list_name in ("containers", "initContainers", "ephemeralContainers"):
        for ctr in _dicts(spec, list_name):
            default_container(ctr)


def _default_pod_only(spec: JSONDict) -> None:
    """SetDefaults_Pod: only for Pod objects, never for templates (upgrade-safety upstream)."""
    for list_name in ("containers", "initContainers"):
        for ctr in _dicts(spec, list_name):
            resources = _peek(ctr, "resources")
            limits = _peek(resources, "limits")
            if resources is None or limits is None:
                continue
            requests = _sub(resources, "requests")
            if requests is None:
                continue
            for name, value in limits.items():
                requests.setdefault(name, value)
    _default(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for list_name in ("containers", "initContainers"):
            for ctr in _dicts(spec, list_name):
                for port in _dicts(ctr, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")


def default_pod(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default_pod_only(spec)
    default_pod_spec(spec)


def default_pod_template(template: JSONDict | None) -> None:
    """Defaults for a PodTemplateSpec (`{"metadata": ..., "spec": ...}`) embedded in a workload."""
    if template is None:
        return
    spec = _sub(template, "spec")
    if spec is not None:
        default_pod_spec(spec)


def _default_spec_template(spec: JSONDict) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_template(template)


# --------------------------------------------------------------------------------------------
# Workloads


def default_replication_controller(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    template = _peek(spec, "template")
    labels = _peek(_peek(template, "metadata"), "labels")
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _sub(obj, "metadata")
        if meta is not None and not meta.get("labels"):
            meta["labels"] = dict(labels)
    _default(spec, "replicas", 1)
    _default_spec_template(spec)


def default_replica_set(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default(spec, "replicas", 1)
    _default_spec_template(spec)


def default_deployment(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default(spec, "replicas", 1)
    strategy = _sub(spec, "strategy")
    if strategy is not None:
        _default_empty(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _sub(strategy, "rollingUpdate")
            if rolling is not None:
                _default(rolling, "maxUnavailable", "25%")
                _default(rolling, "maxSurge", "25%")
    _default(spec, "revisionHistoryLimit", 10)
    _default(spec, "progressDeadlineSeconds", 600)
    _default_spec_template(spec)


def default_daemon_set(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    strategy = _sub(spec, "updateStrategy")
    if strategy is not None:
        _default_empty(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _sub(strategy, "rollingUpdate")
            if rolling is not None:
                _default(rolling, "maxUnavailable", 1)
                _default(rolling, "maxSurge", 0)
    _default(spec, "revisionHistoryLimit", 10)
    _default_spec_template(spec)


def _default_pvc_spec(spec: JSONDict | None) -> None:
    if spec is not None:
        _default(spec, "volumeMode", "Filesystem")


def default_stateful_set(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default_empty(spec, "podManagementPolicy", "OrderedReady")
    strategy = _sub(spec, "updateStrategy")
    if strategy is not None:
        if strategy.get("type") in (None, ""):
            strategy["type"] = "RollingUpdate"
            _default(strategy, "rollingUpdate", {})
        rolling = _peek(strategy, "rollingUpdate")
        if strategy.get("type") == "RollingUpdate" and rolling is not None:
            _default(rolling, "partition", 0)
    retention = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        _default_empty(retention, "whenDeleted", "Retain")
        _default_empty(retention, "whenScaled", "Retain")
    _default(spec, "replicas", 1)
    _default(spec, "revisionHistoryLimit", 10)
    for claim in _dicts(spec, "volumeClaimTemplates"):
        _default_pvc_spec(_sub(claim, "spec"))
        status = _sub(claim, "status")
        if status is not None:
            _default_empty(status, "phase", "Pending")
    _default_spec_template(spec)


def _default_job_spec(spec: JSONDict) -> None:
    """The parts of SetDefaults_Job that live in the JobSpec (not used for CronJob templates)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _default(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    _default_empty(spec, "completionMode", "NonIndexed")
    _default(spec, "suspend", False)
    failure_policy = _peek(spec, "podFailurePolicy")
    if failure_policy is not None:
        for rule in _dicts(failure_policy, "rules"):
            for pattern in _dicts(rule, "onPodConditions"):
                _default_empty(pattern, "status", "True")
    if spec.get("podReplacementPolicy") in (None, ""):
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"


def default_job(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default_job_spec(spec)
    labels = _peek(_peek(_peek(spec, "template"), "metadata"), "labels")
    meta = _sub(obj, "metadata")
    if labels and meta is not None and not meta.get("labels"):
        meta["labels"] = dict(labels)
    _default_spec_template(spec)


def job_prepare_for_create(obj: JSONDict, uid: str) -> None:
    """Selector generation for a new Job (Kubernetes' job strategy), unless `manualSelector: true`.

    Adds `batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`, `controller-uid`
    and `job-name` to the pod template's labels (keeping values the user set), selects
    `batch.kubernetes.io/controller-uid=<uid>`, sets `metadata.uid` when absent, and, when the
    Job's own labels are empty or were defaulted from the template, gives the Job the
    template's final labels (what a Job created by `kubectl create job` shows on a real cluster).
    """
    if not isinstance(obj, dict):
        return
    meta = _sub(obj, "metadata")
    spec = _sub(obj, "spec")
    if meta is None or spec is None:
        return
    _default_empty(meta, "uid", uid)
    if spec.get("manualSelector") is True:
        return
    template = _sub(spec, "template")
    tmeta = _sub(template, "metadata") if template is not None else None
    labels = _sub(tmeta, "labels") if tmeta is not None else None
    if labels is None:
        return
    before = dict(labels)
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    for label in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(label, name)
    for label in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(label, uid)
    selector = _sub(spec, "selector")
    match_labels = _sub(selector, "matchLabels") if selector is not None else None
    if match_labels is not None:
        match_labels.setdefault(CONTROLLER_UID_LABEL, uid)
    job_labels = meta.get("labels")
    if not job_labels or job_labels == before:
        meta["labels"] = dict(labels)


def default_cron_job(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default_empty(spec, "concurrencyPolicy", "Allow")
    _default(spec, "suspend", False)
    _default(spec, "successfulJobsHistoryLimit", 3)
    _default(spec, "failedJobsHistoryLimit", 1)
    job_spec = _peek(_peek(spec, "jobTemplate"), "spec")
    if job_spec is not None:
        _default_spec_template(job_spec)


def default_pod_template_object(obj: JSONDict) -> None:
    template = obj.get("template")
    if isinstance(template, dict):
        default_pod_template(template)


# --------------------------------------------------------------------------------------------
# Services


def _is_ipv6(ip: str) -> bool:
    return ":" in ip


def default_service(obj: JSONDict) -> None:
    spec = _sub(obj, "spec")
    if spec is None:
        return
    _default_empty(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        config = _peek(spec, "sessionAffinityConfig")
        client_ip = _peek(config, "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS}
            }
    _default_empty(spec, "type", "ClusterIP")
    stype = spec.get("type")
    for port in _dicts(spec, "ports"):
        _default_empty(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = stype in ("LoadBalancer", "NodePort") or (
        stype == "ClusterIP" and bool(spec.get("externalIPs"))
    )
    if externally_accessible:
        _default_empty(spec, "externalTrafficPolicy", "Cluster")
    if stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        _default(spec, "internalTrafficPolicy", "Cluster")
    if stype == "LoadBalancer":
        _default(spec, "allocateLoadBalancerNodePorts", True)
        lb = _peek(_peek(obj, "status"), "loadBalancer")
        for ingress in _dicts(lb or {}, "ingress"):
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"
    if stype == "ExternalName":
        return
    # Registry-level normalisation (Kubernetes' service REST strategy / IP allocator).
    cluster_ip = spec.get("clusterIP")
    cluster_ips = spec.get("clusterIPs")
    if isinstance(cluster_ip, str) and cluster_ip and not cluster_ips:
        spec["clusterIPs"] = [cluster_ip]
    elif (
        cluster_ip in (None, "")
        and isinstance(cluster_ips, list)
        and cluster_ips
        and isinstance(cluster_ips[0], str)
    ):
        spec["clusterIP"] = cluster_ips[0]
    _default(spec, "ipFamilyPolicy", "SingleStack")
    if not spec.get("ipFamilies"):
        ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip not in ("", "None")]
        spec["ipFamilies"] = ["IPv6" if _is_ipv6(ip) else "IPv4" for ip in ips] or ["IPv4"]


def _needs_cluster_ip(spec: JSONDict) -> bool:
    return spec.get("type") != "ExternalName"


def _needs_node_ports(spec: JSONDict) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


def service_prepare_for_update(new: JSONDict, old: JSONDict) -> None:
    """Carry allocated values forward when an update omits them (Kubernetes' `patchAllocatedValues`).

    `kubectl apply` of a manifest without clusterIP or nodePort must not look like a request to
    change them: clusterIP/clusterIPs (and ipFamilies/ipFamilyPolicy) are copied from the old
    object, node ports are matched by port name, healthCheckNodePort is kept.
    """
    if not isinstance(new, dict) or not isinstance(old, dict):
        return
    new_spec, old_spec = _peek(new, "spec"), _peek(old, "spec")
    if new_spec is None or old_spec is None:
        return
    if _needs_cluster_ip(old_spec) and _needs_cluster_ip(new_spec):
        if new_spec.get("clusterIP") in (None, "") and not new_spec.get("clusterIPs"):
            for name in ("clusterIP", "clusterIPs"):
                if old_spec.get(name) not in (None, "", []):
                    new_spec[name] = old_spec[name] if name == "clusterIP" else list(old_spec[name])
        for name in ("ipFamilies", "ipFamilyPolicy"):
            if new_spec.get(name) in (None, []) and old_spec.get(name) not in (None, []):
                value = old_spec[name]
                new_spec[name] = list(value) if isinstance(value, list) else value
    if _needs_node_ports(old_spec) and _needs_node_ports(new_spec):
        old_ports = {p.get("name", ""): p.get("nodePort") for p in _dicts(old_spec, "ports")}

        def used(spec: JSONDict) -> set[Any]:
            return {p.get("nodePort") for p in _dicts(spec, "ports") if p.get("nodePort")}

        in_use = used(old_spec) & used(new_spec)
        for port in _dicts(new_spec, "ports"):
            if port.get("nodePort") in (None, 0):
                previous = old_ports.get(port.get("name", ""))
                if _is_int(previous) and previous and previous not in in_use:
                    port["nodePort"] = previous
    keep_health_port = (
        new_spec.get("type") == "LoadBalancer" and new_spec.get("externalTrafficPolicy") == "Local"
    )
    if (
        keep_health_port
        and new_spec.get("healthCheckNodePort") in (None, 0)
        and old_spec.get("healthCheckNodePort")
    ):
        new_spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


# --------------------------------------------------------------------------------------------
# Other core kinds


def default_namespace(obj: JSONDict) -> None:
    meta = _sub(obj, "metadata")
    if meta is not None:
        name = meta.get("name")
        if isinstance(name, str) and name:
            labels = _sub(meta, "labels")
            if labels is not None:
                labels[NAMESPACE_NAME_LABEL] = name
    spec = _sub(obj, "spec")
    if spec is not None and not spec.get("finalizers"):
        spec["finalizers"] = ["kubernetes"]
    status = _sub(obj, "status")
    if status is not None:
        _default_empty(status, "phase", "Active")


def default_node(obj: JSONDict) -> None:
    status = _peek(obj, "status")
    if status is None:
        return
    capacity = _peek(status, "capacity")
    if status.get("allocatable") is None and capacity is not None:
        status["allocatable"] = dict(capacity)


def default_secret(obj: JSONDict) -> None:
    _default_empty(obj, "type", "Opaque")


def default_endpoints(obj: JSONDict) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _default_empty(port, "protocol", "TCP")


def default_persistent_volume_claim(obj: JSONDict) -> None:
    _default_pvc_spec(_sub(obj, "spec"))
    status = _sub(obj, "status")
    if status is not None:
        _default_empty(status, "phase", "Pending")


_DEFAULTERS: dict[str, Callable[[JSONDict], None]] = {
    "Pod": default_pod,
    "PodTemplate": default_pod_template_object,
    "ReplicationController": default_replication_controller,
    "ReplicaSet": default_replica_set,
    "Deployment": default_deployment,
    "DaemonSet": default_daemon_set,
    "StatefulSet": default_stateful_set,
    "Job": default_job,
    "CronJob": default_cron_job,
    "Service": default_service,
    "Namespace": default_namespace,
    "Node": default_node,
    "Secret": default_secret,
    "Endpoints": default_endpoints,
    "PersistentVolumeClaim": default_persistent_volume_claim,
}


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    """Apply Kubernetes' defaults for `kind` to the JSON object `obj`, in place.

    Unknown kinds and kinds without defaults are left alone; a value of the wrong JSON type is
    never "fixed" or replaced (validation reports it) and never raises.
    """
    if not isinstance(obj, dict):
        return
    fn = _DEFAULTERS.get(kind)
    if fn is not None:
        fn(obj)
