"""kpctl logs, exec, attach and run: the commands that stream through the apiserver to a kubelet.

kubectl's behaviour and messages: the container defaults to the pod's
`kubectl.kubernetes.io/default-container` annotation or its first container ("Defaulted container
"a" out of: a, b"); `exec` exits with the remote command's exit code ("command terminated with
exit code 3"); `run` builds the same Pod as kubectl's generator (label `run=NAME`, the container
named NAME, `-- x y` as args unless `--command`) and, with `-i`/`--attach`, waits for the pod to run
and attaches (`--rm` deletes it afterwards).

kplane.cli.kpctl imports this module at its very end; the commands register on `kpctl.cli`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import click

from kplane.api import errors as api
from kplane.api.labels import selector_from_label_selector, selector_from_set
from kplane.api.resources import UnknownResource, resolve
from kplane.cli.kpctl import (
    CLIError,
    Ctx,
    Obj,
    _ns_option,
    cli,
    echo_obj,
    kind_name,
    pass_ctx,
    run,
    to_obj,
)
from kplane.client.client import Client, ExecSession

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


class DashCommand(click.Command):
    """A command whose arguments after `--` are kept apart (kubectl's ArgsLenAtDash): `exec POD --
    CMD -x` must not parse `-x`, and `run NAME -- ARGS` must know which words came after `--`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta["after_dash"] = args[at + 1:]
            args = args[:at]
        else:
            ctx.meta["after_dash"] = None
        return super().parse_args(ctx, args)


def _after_dash() -> list[str] | None:
    value: list[str] | None = click.get_current_context().meta.get("after_dash")
    return value


def usage_error(command: str, message: str) -> CLIError:
    return CLIError(f"{message}\nSee 'kpctl {command} -h' for help and examples")


async def resolve_pod(ctx: Ctx, arg: str) -> Obj:
    """`web`, `pod/web` -> that pod; `deploy/web`, `rs/x`, `job/x`, `ds/x`, `sts/x`, `rc/x`, `svc/x`
    -> one of the pods its selector picks, as kubectl does (scheduled, running and ready pods
    first, then the oldest), saying which on stderr when there are several."""
    if "/" not in arg:
        return await get_pod(ctx, arg)
    type_name, _, name = arg.partition("/")
    try:
        rt = resolve(type_name)
    except UnknownResource as exc:
        raise CLIError(str(exc)) from None
    if not name:
        raise CLIError(f'arguments in resource/name form must have a single resource and name: "{arg}"')
    if rt.kind == "Pod":
        return await get_pod(ctx, name)
    if rt.kind not in ("Deployment", "ReplicaSet", "ReplicationController", "Job", "DaemonSet", "StatefulSet",
                       "Service"):
        raise CLIError(f"cannot attach to {rt.kind}: selector for {rt.kind} not implemented")
    owner = to_obj(rt, await ctx.client().get(rt, name, namespace=ctx.ns))
    spec = owner.get("spec") or {}
    raw = spec.get("selector") or {}
    if rt.kind in ("ReplicationController", "Service"):
        selector = selector_from_set(raw)
    else:
        selector = selector_from_label_selector(raw)
    if selector.empty():
        raise CLIError(f"{rt.kind.lower()} {name} has no selector: cannot pick a pod")
    pods_rt = resolve("pods")
    items, _, _ = await ctx.client().list(pods_rt, namespace=ctx.ns, label_selector=str(selector))
    pods = [to_obj(pods_rt, item) for item in items]
    if not pods:
        raise CLIError(f"timed out waiting for the condition: no pods of {rt.kind.lower()}/{name}")

    def rank(pod: Obj) -> tuple[bool, int, bool, str]:
        status = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        phase_order = {"Running": 0, "Unknown": 1, "Pending": 2}.get(status.get("phase", ""), 3)
        created = (pod.get("metadata") or {}).get("creationTimestamp", "")
        return (not (pod.get("spec") or {}).get("nodeName"), phase_order, not ready, created)

    pods.sort(key=rank)
    chosen = pods[0]
    if len(pods) > 1:
        click.echo(f"Found {len(pods)} pods, using pod/{chosen['metadata']['name']}", err=True)
    return chosen


async def get_pod(ctx: Ctx, name: str) -> Obj:
    rt = resolve("pods")
    return to_obj(rt, await ctx.client().get(rt, name, namespace=ctx.ns))


def container_names(pod: Obj) -> tuple[list[str], list[str]]:
    spec = pod.get("spec") or {}
    return ([c.get("name", "") for c in spec.get("containers") or []],
            [c.get("name", "") for c in spec.get("initContainers") or []])


def default_container(pod: Obj, requested: str, *, quiet: bool = False) -> str:
    """kubectl's FindOrDefaultContainerByName: the named container (which must exist), else the
    default-container annotation, else the first container (saying so when there was a choice)."""
    containers, inits = container_names(pod)
    name = pod["metadata"]["name"]
    if requested:
        if requested not in containers and requested not in inits:
            raise CLIError(f"container {requested} not found in pod {name}")
        return requested
    if not containers:
        raise CLIError(f"pod {pod['metadata'].get('namespace', '')}/{name} does not have any containers")
    annotated = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION, "")
    if annotated and (annotated in containers or annotated in inits):
        return str(annotated)
    if not quiet and (len(containers) > 1 or inits):
        choices = ", ".join([*containers, *(f"{c} (init)" for c in inits)])
        click.echo(f'Defaulted container "{containers[0]}" out of: {choices}', err=True)
    return containers[0]


@contextlib.contextmanager
def server_unavailable_is_a_server_error() -> Iterator[None]:
    """kpctl's generic handler reads Unavailable as "cannot reach the apiserver". A streaming call
    can also get Unavailable *from* the apiserver (the node's kubelet is unreachable): that is the
    server's answer, printed as such."""
    try:
        yield
    except api.Unavailable as exc:
        if exc.message.startswith("the apiserver is unavailable"):
            raise
        click.echo(f"Error from server ({exc.reason}): {exc.message}", err=True)
        sys.exit(1)


def _write(stream: str, data: bytes) -> None:
    out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
    out.write(data)
    out.flush()


class StdinReader:
    """Our stdin in chunks, read by a daemon thread (a blocked read must never keep kpctl alive
    after the remote side has finished) and handed to the event loop; b"" is EOF."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            fd = sys.stdin.fileno()
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                loop.call_soon_threadsafe(self.queue.put_nowait, data)
                if not data:
                    return

        threading.Thread(target=read, name="kpctl-stdin", daemon=True).start()

    async def chunks(self) -> AsyncIterator[bytes]:
        while data := await self.queue.get():
            yield data


@contextlib.contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    """-t on a terminal: raw mode (keys go to the remote side as typed), restored afterwards."""
    if not enabled:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def use_tty(stdin: bool, tty: bool, quiet: bool) -> bool:
    """kubectl's SetupTTY: a TTY needs stdin, and stdin must be a terminal."""
    if not (stdin and tty):
        return False
    if not sys.stdin.isatty():
        if not quiet:
            click.echo("Unable to use a TTY - input is not a terminal or the right kind of file", err=True)
        return False
    return True


async def pump_session(session: ExecSession, stdin: bool) -> int:
    """Our stdin -> the session (closing it at EOF), the session's output -> our stdout/stderr;
    returns the exit code."""
    feeder: asyncio.Task[None] | None = None
    if stdin:
        reader = StdinReader()

        async def feed() -> None:
            async for data in reader.chunks():
                await session.write_stdin(data)
            await session.close_stdin()

        feeder = asyncio.create_task(feed())
    try:
        async for stream, data in session.output():
            _write(stream, data)
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
    assert session.exit_code is not None
    return session.exit_code


# -- logs --------------------------------------------------------------------------------------


@click.command()
@click.argument("args", nargs=-1, metavar="POD [CONTAINER]")
@_ns_option
@click.option("-c", "--container", default="", help="print the logs of this container")
@click.option("-f", "--follow", is_flag=True, help="stream the logs until the container exits")
@click.option("-p", "--previous", is_flag=True, help="the logs of the previous (terminated) instance")
@click.option("--tail", type=int, default=-1, help="lines of recent log to show (-1: all)")
@click.option("--timestamps", is_flag=True, help="prefix each line with its RFC3339 timestamp")
@click.option("--limit-bytes", type=int, default=0, help="maximum bytes of log to return (0: no limit)")
@pass_ctx
@run
async def logs(ctx: Ctx, args: tuple[str, ...], container: str, follow: bool, previous: bool, tail: int,
               timestamps: bool, limit_bytes: int) -> None:
    """Print the logs of a container in a pod.

    \b
    kpctl logs web
    kpctl logs web -c sidecar --tail 20
    kpctl logs -f web
    kpctl logs -p web          (the previous, crashed instance)
    """
    if not args:
        raise usage_error("logs", "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a "
                                  "required argument for the logs command")
    if len(args) > 2:
        raise usage_error("logs", "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.")
    if len(args) == 2:
        if container:
            raise CLIError("only one of -c or an inline [CONTAINER] arg is allowed")
        container = args[1]
    if tail < -1:
        raise CLIError("--tail must be greater than or equal to -1")
    if limit_bytes < 0:
        raise CLIError("--limit-bytes must be greater than 0")
    pod = await resolve_pod(ctx, args[0])
    name = pod["metadata"]["name"]
    if container:
        containers, inits = container_names(pod)
        if container not in containers and container not in inits:
            raise CLIError(f"container {container} is not valid for pod {name}")
    else:
        container = default_container(pod, "")
    with server_unavailable_is_a_server_error():
        async for chunk in ctx.client().logs(ctx.ns, name, container=container, follow=follow, previous=previous,
                                             tail_lines=tail if tail >= 0 else None, timestamps=timestamps,
                                             limit_bytes=limit_bytes or None):
            _write("stdout", chunk)


# -- exec --------------------------------------------------------------------------------------


@click.command("exec", cls=DashCommand)
@click.argument("args", nargs=-1, metavar="POD -- COMMAND [ARGS...]")
@_ns_option
@click.option("-c", "--container", default="", help="container name (default: the pod's default container)")
@click.option("-i", "--stdin", "stdin", is_flag=True, help="pass stdin to the container")
@click.option("-t", "--tty", is_flag=True, help="stdin is a TTY")
@click.option("-q", "--quiet", is_flag=True, help="only print output from the remote session")
@pass_ctx
@run
async def exec_(ctx: Ctx, args: tuple[str, ...], container: str, stdin: bool, tty: bool, quiet: bool) -> None:
    """Execute a command in a container; kpctl exits with the command's exit code.

    \b
    kpctl exec web -- date
    kpctl exec web -c sidecar -- sh -c 'echo $HOSTNAME'
    echo hi | kpctl exec -i web -- cat
    """
    command = _after_dash()
    words = list(args)
    if command is None and len(words) > 1:
        if not quiet:
            click.echo("kpctl exec [POD] [COMMAND] is DEPRECATED and will be removed in a future version. Use kpctl "
                       "exec [POD] -- [COMMAND] instead.", err=True)
        command = words[1:]
        words = words[:1]
    if not words:
        raise usage_error("exec", "pod, type/name or --filename must be specified")
    if not command:
        raise usage_error("exec", "you must specify at least one command for the container")
    pod = await resolve_pod(ctx, words[0])
    phase = (pod.get("status") or {}).get("phase", "")
    if phase in ("Succeeded", "Failed"):
        raise CLIError(f"cannot exec into a container in a completed pod; current phase is {phase}")
    container = container or default_container(pod, "", quiet=quiet)
    raw = use_tty(stdin, tty, quiet)
    with server_unavailable_is_a_server_error():
        session = await ctx.client().exec(ctx.ns, pod["metadata"]["name"], command, container=container,
                                          stdin=stdin, tty=raw)
        async with session:
            with raw_terminal(raw):
                code = await pump_session(session, stdin)
    if code != 0:
        click.echo(f"command terminated with exit code {code}", err=True)
        sys.exit(code)


# -- attach ------------------------------------------------------------------------------------


async def attach_to(ctx: Ctx, pod: Obj, container: str, *, stdin: bool, tty: bool, quiet: bool) -> int:
    """kubectl attach's Run on a pod already read: pick the container, reconcile -t with the
    container's own tty, stream until the container exits (or its stdin is closed)."""
    name = pod["metadata"]["name"]
    try:
        chosen = default_container(pod, container, quiet=quiet)
    except CLIError as exc:
        raise CLIError(f"cannot attach to the container: {exc}") from None
    spec: Obj = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == chosen), {})
    if tty and not spec.get("tty"):
        tty = False
        if not quiet:
            click.echo(f"error: Unable to use a TTY - container {chosen} did not allocate one", err=True)
    elif not tty and spec.get("tty"):
        tty = True
    raw = use_tty(stdin, tty, quiet)
    if not quiet:
        click.echo("If you don't see a command prompt, try pressing enter.", err=True)
    with server_unavailable_is_a_server_error():
        session = await ctx.client().attach(ctx.ns, name, container=chosen, stdin=stdin, tty=raw)
        async with session:
            with raw_terminal(raw):
                code = await pump_session(session, stdin)
    if not quiet and stdin and raw:
        click.echo(f"Session ended, resume using 'kpctl attach {name} -c {chosen} -n {ctx.ns} -i -t' command")
    return code


@click.command()
@click.argument("args", nargs=-1, metavar="POD")
@_ns_option
@click.option("-c", "--container", default="", help="container name (default: the pod's default container)")
@click.option("-i", "--stdin", "stdin", is_flag=True, help="pass stdin to the container")
@click.option("-t", "--tty", is_flag=True, help="stdin is a TTY")
@click.option("-q", "--quiet", is_flag=True, help="only print output from the remote session")
@pass_ctx
@run
async def attach(ctx: Ctx, args: tuple[str, ...], container: str, stdin: bool, tty: bool, quiet: bool) -> None:
    """Attach to the process already running in a container: its output, and with -i its stdin.

    \b
    kpctl attach web
    kpctl attach web -c shell -i -t
    """
    if not args:
        raise usage_error("attach", "at least 1 argument is required for attach")
    if len(args) > 2:
        raise usage_error("attach", f"expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw {len(args)}: "
                                    f"[{' '.join(args)}]")
    target = args[0] if len(args) == 1 else f"{args[0]}/{args[1]}"
    pod = await resolve_pod(ctx, target)
    phase = (pod.get("status") or {}).get("phase", "")
    if phase in ("Succeeded", "Failed"):
        raise CLIError(f"cannot attach a container in a completed pod; current phase is {phase}")
    await attach_to(ctx, pod, container, stdin=stdin, tty=tty, quiet=quiet)


# -- run ---------------------------------------------------------------------------------------

# docker's reference grammar (distribution/reference), enough to reject what kubectl rejects
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                             rf"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESTART_POLICIES = ("Always", "OnFailure", "Never")


def parse_labels(spec: str) -> dict[str, str]:
    """kubectl's ParseLabels: `k=v,k2=v2`."""
    labels: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key or "=" in value:
            raise CLIError(f"unexpected label spec: {item}")
        labels[key] = value
    return labels


def parse_env(items: tuple[str, ...]) -> list[dict[str, str]]:
    env = []
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name or not ENV_NAME.match(name):
            raise CLIError(f"invalid env: {item}")
        env.append({"name": name, "value": value})
    return env


def build_pod(name: str, image: str, *, restart: str, labels: str, env: tuple[str, ...], port: str,
              command: bool, args: list[str], stdin: bool, tty: bool, annotations: tuple[str, ...],
              image_pull_policy: str) -> Obj:
    """The Pod kubectl run's generator builds (what `--dry-run=client -o yaml` prints)."""
    container: Obj = {"name": name, "image": image, "resources": {}}
    if stdin:
        container["stdin"] = True
        container["stdinOnce"] = True
    if tty:
        container["tty"] = True
    if args:
        container["command" if command else "args"] = args
    parsed_env = parse_env(env)
    if parsed_env:
        container["env"] = parsed_env
    if image_pull_policy:
        container["imagePullPolicy"] = image_pull_policy
    if port:
        try:
            container["ports"] = [{"containerPort": int(port)}]
        except ValueError:
            raise CLIError(f'strconv.Atoi: parsing "{port}": invalid syntax') from None
    metadata: Obj = {"creationTimestamp": None, "name": name,
                     "labels": parse_labels(labels) if labels else {"run": name}}
    if annotations:
        metadata["annotations"] = {}
        for item in annotations:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise CLIError(f"invalid annotation spec: {item}")
            metadata["annotations"][key] = value
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [container], "dnsPolicy": "ClusterFirst", "restartPolicy": restart or "Always"},
            "status": {}}


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def wait_for_pod(client: Client, namespace: str, name: str, timeout: float, done: Any) -> Obj:
    """Watch one pod until `done(pod)` (kubectl's waitForPod); a timeout is kubectl's error."""
    rt = resolve("pods")
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    async for etype, msg in client.watch(rt, namespace=namespace, field_selector=f"metadata.name={name}"):
                        if etype == "DELETED":
                            raise CLIError(f'pods "{name}" not found')
                        if etype in ("ADDED", "MODIFIED"):
                            pod = to_obj(rt, msg)
                            if done(pod):
                                return pod
                except api.Expired:
                    continue  # relist: the watch restarts from the current state
    except TimeoutError:
        raise CLIError("timed out waiting for the condition") from None


@click.command("run", cls=DashCommand)
@click.argument("args", nargs=-1, metavar="NAME")
@_ns_option
@click.option("--image", default=None, help="the image for the container to run")
@click.option("--restart", default="", help="the restart policy for this Pod: Always, OnFailure or Never")
@click.option("--env", multiple=True, help="environment variables to set in the container (K=V)")
@click.option("-l", "--labels", default="", help="comma separated labels for the pod (default run=NAME)")
@click.option("--annotations", multiple=True, help="annotations for the pod (K=V)")
@click.option("--port", default="", help="the port that this container exposes")
@click.option("--image-pull-policy", default="", help="Always, IfNotPresent or Never")
@click.option("--command", "use_command", is_flag=True,
              help="use the words after -- as the container's command rather than its args")
@click.option("-i", "--stdin", "stdin", is_flag=True, help="keep stdin open on the container (implies --attach)")
@click.option("-t", "--tty", is_flag=True, help="allocate a TTY for the container")
@click.option("--attach/--no-attach", "attach_", default=None,
              help="wait for the pod to run, then attach (default: with -i)")
@click.option("--rm", is_flag=True, help="delete the pod after it exits (attached runs only)")
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none")
@click.option("-o", "--output", default="", help="yaml|json|name")
@click.option("--pod-running-timeout", default="1m", help="how long to wait for the pod to run (e.g. 30s, 1m)")
@click.option("-q", "--quiet", is_flag=True, help="suppress prompt messages")
@pass_ctx
@run
async def run_(ctx: Ctx, args: tuple[str, ...], image: str | None, restart: str, env: tuple[str, ...], labels: str,
               annotations: tuple[str, ...], port: str, image_pull_policy: str, use_command: bool, stdin: bool,
               tty: bool, attach_: bool | None, rm: bool, dry_run: str, output: str, pod_running_timeout: str,
               quiet: bool) -> None:
    """Create and run a particular image in a pod.

    \b
    kpctl run nginx --image=nginx
    kpctl run hazelcast --image=hazelcast/hazelcast --port=5701 --env="DNS_DOMAIN=cluster"
    kpctl run nginx --image=nginx --dry-run=client -o yaml
    kpctl run -i -t busybox --image=busybox --restart=Never --rm -- sh
    kpctl run pi --image=perl --restart=OnFailure -- perl -Mbignum=bpi -wle 'print bpi(20)'
    """
    from kplane.durations import parse_duration

    after = _after_dash()
    if not args:
        raise usage_error("run", "NAME is required for run")
    name, extra = args[0], [*args[1:], *(after or [])]
    if image is None:
        raise CLIError('required flag(s) "image" not set')
    if not image:
        raise usage_error("run", "--image is required")
    if not IMAGE_REFERENCE.match(image):
        raise CLIError(f'Invalid image name "{image}": invalid reference format')
    if tty and not stdin:
        raise usage_error("run", "-i/--stdin is required for containers with -t/--tty=true")
    if restart and restart not in RESTART_POLICIES:
        raise usage_error("run", f"invalid restart policy: {restart}")
    attach = stdin if attach_ is None else attach_
    if rm and not attach:
        raise usage_error("run", "--rm should only be used for attached containers")
    if attach and dry_run != "none":
        raise usage_error("run", "--dry-run=[server|client] can't be used with attached containers options "
                                 "(--attach, --stdin, or --tty)")
    if image_pull_policy and image_pull_policy not in ("Always", "IfNotPresent", "Never"):
        raise CLIError(f"invalid image pull policy: {image_pull_policy}")
    try:
        timeout = parse_duration(pod_running_timeout)
    except ValueError as exc:
        raise usage_error("run", f"invalid --pod-running-timeout: {exc}") from None
    if timeout <= 0:
        raise usage_error("run", "--pod-running-timeout must be higher than zero")
    # kubectl waits for the exit code when the effective policy lets the pod finish (-i defaults it to OnFailure)
    policy = restart or ("OnFailure" if stdin else "Always")
    pod = build_pod(name, image, restart=restart, labels=labels, env=env, port=port, command=use_command,
                    args=extra, stdin=stdin, tty=tty, annotations=annotations, image_pull_policy=image_pull_policy)
    rt = resolve("pods")
    if dry_run == "client":
        if output:
            echo_obj([pod], output)
        else:
            click.echo(f"{kind_name(rt, name)} created (dry run)")
        return
    body = {k: v for k, v in pod.items() if k != "status"}
    body["metadata"] = {k: v for k, v in pod["metadata"].items() if k != "creationTimestamp"}
    client = ctx.client()
    created = to_obj(rt, await client.create(rt, body, namespace=ctx.ns, dry_run=dry_run == "server"))
    if not attach:
        if output:
            echo_obj([created], output)
        else:
            suffix = " (server dry run)" if dry_run == "server" else ""
            click.echo(f"{kind_name(rt, name)} created{suffix}")
        return
    try:
        code = await _run_attached(ctx, created, policy, timeout, stdin=stdin, tty=tty, quiet=quiet)
    finally:
        if rm:
            with contextlib.suppress(api.NotFound):
                await client.delete(rt, name, namespace=ctx.ns)
                if not quiet:
                    click.echo(f'pod "{name}" deleted')
    if code:
        sys.exit(code)


async def _run_attached(ctx: Ctx, created: Obj, policy: str, timeout: float, *, stdin: bool, tty: bool,
                        quiet: bool) -> int:
    """Wait for the pod to run and be ready, attach; then, for OnFailure/Never, wait for the pod
    to finish and return its container's exit code (kubectl run's contract)."""
    client = ctx.client()
    name = created["metadata"]["name"]
    pod = await wait_for_pod(client, ctx.ns, name, timeout, lambda p: (
        (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        or ((p.get("status") or {}).get("phase") == "Running" and _ready(p))))
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        # it finished before we could attach: show what it printed instead
        with server_unavailable_is_a_server_error():
            async for chunk in client.logs(ctx.ns, name, container=name):
                _write("stdout", chunk)
    else:
        await attach_to(ctx, pod, "", stdin=stdin, tty=tty, quiet=quiet)
    if policy not in ("Never", "OnFailure"):
        return 0
    wanted = ("Succeeded", "Failed") if policy == "Never" else ("Succeeded",)
    pod = await wait_for_pod(client, ctx.ns, name, timeout, lambda p: (p.get("status") or {}).get("phase") in wanted)
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        return 0
    statuses = status.get("containerStatuses") or []
    terminated = ((statuses[0].get("state") or {}).get("terminated") or {}) if statuses else {}
    code = int(terminated.get("exitCode") or 0)
    if not code:
        raise CLIError(f"pod {ctx.ns}/{name} failed with unknown exit code")
    click.echo(f"error: pod {ctx.ns}/{name} terminated ({terminated.get('reason', '')})\n"
               f"{terminated.get('message', '')}", err=True)
    return code


for _command in (logs, exec_, attach, run_):
    cli.add_command(_command)
