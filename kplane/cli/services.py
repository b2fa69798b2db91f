"""kpctl create service / expose: kubectl's Service generators.

``kpctl create service clusterip|nodeport|loadbalancer|externalname NAME`` builds the Service
``kubectl create service`` builds (its create_service.go): selector and label ``app: NAME``, one
port per ``--tcp=PORT[:TARGET]`` named after the spec (``5678-8080``), ``--clusterip``,
``--node-port`` on every port. ``kpctl expose TYPE NAME`` builds the Service ``kubectl expose``
builds (expose.go): the selector from the object (a Deployment's or ReplicaSet's matchLabels, a
ReplicationController's selector, a Pod's labels, a Service's selector), the object's labels, the
port from ``--port`` or from the object's container ports (``port-1``, ``port-2``, ... when
there are several), ``--target-port`` for every port (else the port itself).

``--dry-run=client -o yaml`` prints what kubectl prints; messages and exit codes are kubectl's.
The apiserver allocates the ClusterIP and node ports (apiserver/allocator.py).

kplane.cli.kpctl imports this module at its very end; the commands register on its ``cli`` and
``create`` groups.
"""

from __future__ import annotations

from typing import Any

import click

from kplane.api import errors as api
from kplane.api.resources import ResourceType, UnknownResource, resolve
from kplane.cli.kpctl import (
    CLIError,
    Ctx,
    Obj,
    _ns_option,
    check_output,
    cli,
    create,
    create_and_report,
    pass_ctx,
    run,
    to_obj,
)

SERVICES: ResourceType = resolve("services")
SERVICE_TYPES = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer",
                 "externalname": "ExternalName"}
# what `kubectl expose` accepts (its CanBeExposed)
EXPOSABLE = {("", "Pod"), ("", "Service"), ("", "ReplicationController"), ("apps", "Deployment"),
             ("apps", "ReplicaSet")}


def _go_parse_uint16(text: str) -> int:
    """strconv.ParseUint(text, 10, 16), with Go's error text."""
    if not text or not text.isascii() or not text.isdigit():
        raise CLIError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    value = int(text)
    if value > 65535:
        raise CLIError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


def _int_or_string(text: str) -> int | str:
    """intstr.Parse: a number when it is one, else the string."""
    try:
        value = int(text)
    except ValueError:
        return text
    return value if -(2 ** 31) <= value < 2 ** 31 else text


def parse_tcp(specs: tuple[str, ...]) -> list[dict[str, Any]]:
    """``--tcp=PORT[:TARGET]`` (repeatable, comma-separated) -> ServicePorts as kubectl builds them."""
    ports: list[dict[str, Any]] = []
    for raw in specs:
        for spec in raw.split(","):
            parts = spec.split(":")
            port = _go_parse_uint16(parts[0])
            target = _int_or_string(parts[1]) if len(parts) > 1 else port
            ports.append({"name": spec.replace(":", "-"), "protocol": "TCP", "port": port, "targetPort": target})
    return ports


def build_service(kind: str, name: str, tcp: tuple[str, ...], *, cluster_ip: str = "", node_port: int = 0,
                  external_name: str = "", namespace: str | None = None) -> Obj:
    """The Service ``kubectl create service KIND NAME`` generates (keys in Go's field order)."""
    stype = SERVICE_TYPES[kind]
    if not tcp and stype != "ExternalName" and cluster_ip != "None":
        raise CLIError("at least one tcp port specifier must be provided")
    ports = parse_tcp(tcp)
    if node_port:
        for port in ports:
            port["nodePort"] = node_port
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["creationTimestamp"] = None
    meta["labels"] = {"app": name}
    spec: dict[str, Any] = {}
    if ports:
        spec["ports"] = ports
    spec["selector"] = {"app": name}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    spec["type"] = stype
    if external_name:
        spec["externalName"] = external_name
    return {"kind": "Service", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": {"loadBalancer": {}}}


def _for_server(obj: Obj) -> Obj:
    """The object as sent: without kubectl's printed placeholders."""
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {k: v for k, v in obj["metadata"].items() if not (k == "creationTimestamp" and v is None)}
    return out


async def _submit(ctx: Ctx, obj: Obj, dry_run: str, output: str, verb: str, failure: str) -> None:
    await create_and_report(ctx, SERVICES, obj, _for_server(obj), dry_run, output, failure=failure, verb=verb,
                            passthrough=(api.Unavailable, api.NotFound, api.AlreadyExists), json_as_built=True)


def _name_arg(kind: str, args: tuple[str, ...]) -> str:
    if len(args) != 1:
        raise CLIError(f"exactly one NAME is required, got {len(args)}\n"
                       f"See 'kpctl create service {kind} -h' for help and examples")
    return args[0]


@create.group("service", invoke_without_command=False)
def create_service() -> None:
    """Create a service using a specified subcommand (clusterip, nodeport, loadbalancer, externalname)."""


def _service_command(kind: str, doc: str) -> Any:
    def decorate(f: Any) -> Any:
        f.__doc__ = doc
        f = run(f)
        f = pass_ctx(f)
        f = click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=TEMPLATE")(f)
        f = click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")(f)
        f = _ns_option(f)
        f = click.argument("args", nargs=-1, metavar="NAME")(f)
        return create_service.command(kind)(f)
    return decorate


@_service_command("clusterip", """Create a ClusterIP service with the specified name.

    \b
    kpctl create service clusterip my-cs --tcp=5678:8080
    kpctl create service clusterip my-cs --clusterip="None"
    """)
@click.option("--tcp", multiple=True, help="Port pairs can be specified as '<port>:<targetPort>'.")
@click.option("--clusterip", "cluster_ip", default="", help="Assign your own ClusterIP or set to 'None' for a "
              "'headless' service (no loadbalancing).")
async def create_service_clusterip(ctx: Ctx, args: tuple[str, ...], dry_run: str, output: str, tcp: tuple[str, ...],
                                   cluster_ip: str) -> None:
    check_output(output)
    name = _name_arg("clusterip", args)
    obj = build_service("clusterip", name, tcp, cluster_ip=cluster_ip, namespace=ctx.namespace)
    await _submit(ctx, obj, dry_run, output, "created", "failed to create ClusterIP service")


@_service_command("nodeport", """Create a NodePort service with the specified name.

    \b
    kpctl create service nodeport my-ns --tcp=5678:8080
    kpctl create service nodeport my-ns --tcp=80:8080 --node-port=30080
    """)
@click.option("--tcp", multiple=True, help="Port pairs can be specified as '<port>:<targetPort>'.")
@click.option("--node-port", type=int, default=0, help="Port used to expose the service on each node in a cluster.")
async def create_service_nodeport(ctx: Ctx, args: tuple[str, ...], dry_run: str, output: str, tcp: tuple[str, ...],
                                  node_port: int) -> None:
    check_output(output)
    name = _name_arg("nodeport", args)
    obj = build_service("nodeport", name, tcp, node_port=node_port, namespace=ctx.namespace)
    await _submit(ctx, obj, dry_run, output, "created", "failed to create NodePort service")


@_service_command("loadbalancer", """Create a LoadBalancer service with the specified name (kplane has no load
    balancer: the service gets its ClusterIP and node ports, its EXTERNAL-IP stays <pending>).

    \b
    kpctl create service loadbalancer my-lbs --tcp=5678:8080
    """)
@click.option("--tcp", multiple=True, help="Port pairs can be specified as '<port>:<targetPort>'.")
async def create_service_loadbalancer(ctx: Ctx, args: tuple[str, ...], dry_run: str, output: str,
                                      tcp: tuple[str, ...]) -> None:
    check_output(output)
    name = _name_arg("loadbalancer", args)
    obj = build_service("loadbalancer", name, tcp, namespace=ctx.namespace)
    await _submit(ctx, obj, dry_run, output, "created", "failed to create LoadBalancer service")


@_service_command("externalname", """Create an ExternalName service with the specified name.

    \b
    kpctl create service externalname my-ns --external-name bar.com
    """)
@click.option("--tcp", multiple=True, help="Port pairs can be specified as '<port>:<targetPort>'.")
@click.option("--external-name", default="", help="External name of service")
async def create_service_externalname(ctx: Ctx, args: tuple[str, ...], dry_run: str, output: str,
                                      tcp: tuple[str, ...], external_name: str) -> None:
    check_output(output)
    name = _name_arg("externalname", args)
    if not external_name:
        raise CLIError('required flag(s) "external-name" not set')
    obj = build_service("externalname", name, tcp, external_name=external_name, namespace=ctx.namespace)
    await _submit(ctx, obj, dry_run, output, "created", "failed to create ExternalName service")


# -- expose ------------------------------------------------------------------------------------


def _usage(message: str) -> CLIError:
    return CLIError(f"{message}\nSee 'kpctl expose -h' for help and examples")


def _target(args: tuple[str, ...]) -> tuple[ResourceType, str]:
    if not args:
        raise CLIError("You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '<resource> <name>'\n   '<resource>/<name>'")
    if len(args) == 1 and "/" in args[0]:
        type_name, _, name = args[0].partition("/")
    elif len(args) == 2 and "/" not in args[0]:
        type_name, name = args
    else:
        raise _usage("expose takes one resource: TYPE NAME or TYPE/NAME")
    try:
        rt = resolve(type_name)
    except UnknownResource:
        raise CLIError(f'the server doesn\'t have a resource type "{type_name}"') from None
    if not name:
        raise _usage(f'arguments in resource/name form must have a single resource and name: "{args[0]}"')
    if (rt.group, rt.kind) not in EXPOSABLE:
        group_kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
        raise CLIError(f"cannot expose a {group_kind}")
    return rt, name


def selector_of(obj: Obj) -> dict[str, str]:
    """kubectl's MapBasedSelectorForObject."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not labels:
            raise ValueError("the pod has no labels and cannot be exposed")
        return dict(labels)
    if kind == "Service":
        if not spec.get("selector"):
            raise ValueError("the service has no pod selector set")
        return dict(spec["selector"])
    if kind == "ReplicationController":
        return dict(spec.get("selector") or {})
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        raise ValueError(f"couldn't convert expressions - {selector['matchExpressions']!r} to map-based selector "
                         "format")
    return dict(selector.get("matchLabels") or {})


def _containers(obj: Obj) -> list[Obj]:
    spec = obj.get("spec") or {}
    if obj.get("kind") != "Pod":
        spec = ((spec.get("template") or {}).get("spec")) or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def ports_of(obj: Obj) -> list[tuple[int, str]]:
    """kubectl's PortsForObject with each port's protocol: (port, protocol), first protocol wins."""
    out: list[tuple[int, str]] = []
    if obj.get("kind") == "Service":
        items = [(int(p.get("port") or 0), str(p.get("protocol") or "TCP"))
                 for p in (obj.get("spec") or {}).get("ports") or []]
    else:
        items = [(int(p.get("containerPort") or 0), str(p.get("protocol") or "TCP"))
                 for c in _containers(obj) for p in c.get("ports") or []]
    seen: set[int] = set()
    for port, protocol in items:
        if port and port not in seen:
            seen.add(port)
            out.append((port, protocol))
    return out


def _parse_map(text: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CLIError(f"invalid {flag} {text!r}: want key=value[,key=value]")
        out[key.strip()] = value.strip()
    return out


def build_exposed(obj: Obj, *, name: str = "", port: str = "", target_port: str = "", protocol: str = "",
                  service_type: str = "", selector: str = "", labels: str = "", cluster_ip: str = "",
                  external_ip: str = "", session_affinity: str = "", namespace: str | None = None) -> Obj:
    """The Service ``kubectl expose`` generates for `obj` (keys in Go's field order)."""
    meta_in = obj.get("metadata") or {}
    headless = cluster_ip == "None"
    if selector:
        chosen = _parse_map(selector, "--selector")
    else:
        try:
            chosen = selector_of(obj)
        except ValueError as exc:
            raise _usage(f"couldn't retrieve selectors via --selector flag or introspection: {exc}") from None
    if not chosen:
        raise _usage("couldn't retrieve selectors via --selector flag or introspection: "
                     "the object has no selector")
    found = ports_of(obj)
    numbers: list[tuple[int, str]]
    if port:
        try:
            numbers = [(int(p), "") for p in port.split(",")]
        except ValueError:
            raise CLIError(f'strconv.Atoi: parsing "{port}": invalid syntax') from None
    else:
        numbers = found
        if not numbers and not headless:
            raise _usage("couldn't find port via --port flag or introspection")
    protocols = {p: proto for p, proto in found}
    ports: list[dict[str, Any]] = []
    for i, (number, found_protocol) in enumerate(numbers):
        entry: dict[str, Any] = {}
        if len(numbers) > 1:
            entry["name"] = f"port-{i + 1}"
        entry["protocol"] = protocol or found_protocol or protocols.get(number) or "TCP"
        entry["port"] = number
        entry["targetPort"] = _int_or_string(target_port) if target_port else number
        ports.append(entry)
    meta: dict[str, Any] = {"name": name or meta_in.get("name", "")}
    if namespace:
        meta["namespace"] = namespace
    meta["creationTimestamp"] = None
    chosen_labels = _parse_map(labels, "--labels") if labels else dict(meta_in.get("labels") or {})
    if chosen_labels:
        meta["labels"] = chosen_labels
    spec: dict[str, Any] = {}
    if ports:
        spec["ports"] = ports
    spec["selector"] = chosen
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if service_type:
        spec["type"] = service_type
    if external_ip:
        spec["externalIPs"] = [external_ip]
    if session_affinity:
        spec["sessionAffinity"] = session_affinity
    return {"kind": "Service", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": {"loadBalancer": {}}}


@cli.command("expose")
@click.argument("args", nargs=-1, metavar="(TYPE NAME | TYPE/NAME)")
@_ns_option
@click.option("--port", default="", help="The port that the service should serve on. Copied from the resource "
              "being exposed, if unspecified")
@click.option("--target-port", default="", help="Name or number for the port on the container that the service "
              "should direct traffic to. Optional.")
@click.option("--protocol", default="", help="The network protocol for the service to be created. Default is 'TCP'.")
@click.option("--type", "service_type", default="", help="Type for this service: ClusterIP, NodePort, LoadBalancer, "
              "or ExternalName. Default is 'ClusterIP'.")
@click.option("--name", default="", help="The name for the newly created object.")
@click.option("--selector", default="", help="A label selector to use for this service. Only equality-based "
              "selector requirements are supported. If empty (the default) infer the selector from the resource.")
@click.option("-l", "--labels", default="", help="Labels to apply to the service created by this call.")
@click.option("--cluster-ip", default="", help="ClusterIP to be assigned to the service. Leave empty to "
              "auto-allocate, or set to 'None' to create a headless service.")
@click.option("--external-ip", default="", help="Additional external IP address (not managed by kplane) to accept "
              "for the service.")
@click.option("--session-affinity", default="", help="If non-empty, set the session affinity for the service to "
              "this; legal values: 'None', 'ClientIP'")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name|jsonpath=TEMPLATE")
@pass_ctx
@run
async def expose(ctx: Ctx, args: tuple[str, ...], port: str, target_port: str, protocol: str, service_type: str,
                 name: str, selector: str, labels: str, cluster_ip: str, external_ip: str, session_affinity: str,
                 dry_run: str, output: str) -> None:
    """Expose a deployment, replica set, replication controller, pod or service as a new Service.

    \b
    kpctl expose deployment nginx --port=80 --target-port=8000
    kpctl expose rc nginx --port=80 --target-port=8000 --type=NodePort
    kpctl expose pod valid-pod --port=444 --name=frontend
    kpctl expose service nginx --port=443 --target-port=8443 --name=nginx-https
    """
    check_output(output)
    rt, source = _target(args)
    found = to_obj(rt, await ctx.client().get(rt, source, namespace=ctx.ns))
    found.setdefault("kind", rt.kind)
    obj = build_exposed(found, name=name, port=port, target_port=target_port, protocol=protocol,
                        service_type=service_type, selector=selector, labels=labels, cluster_ip=cluster_ip,
                        external_ip=external_ip, session_affinity=session_affinity, namespace=ctx.namespace)
    await _submit(ctx, obj, dry_run, output, "exposed", "")
