"""Errors of the streaming subresources (pods/log, pods/exec, pods/attach), worded as Kubernetes'.

Both hops check the same things: the apiserver picks the container from the pod's spec before it
contacts a kubelet (as Kubernetes' `LogLocation`/`streamLocation` do), and the kubelet checks it
again against what actually runs (its own pods, current and previous attempts). Everything a
caller asked wrongly is a BadRequest (HTTP 400, gRPC INVALID_ARGUMENT), as in Kubernetes; a pod
that does not exist is NotFound.
"""

from __future__ import annotations

from collections.abc import Sequence

from kplane.api import errors as api


def pod_not_found(name: str) -> api.NotFound:
    return api.NotFound.for_object("pods", name)


def choose_container(pod: str, containers: Sequence[str], init_containers: Sequence[str] = (),
                     requested: str = "") -> str:
    """The container a request means: `requested` when it names one of the pod's (init)
    containers, the only container when none is named; otherwise the apiserver's BadRequest."""
    if requested:
        if requested in containers or requested in init_containers:
            return requested
        raise api.BadRequest(f"container {requested} is not valid for pod {pod}")
    if len(containers) == 1:
        return containers[0]
    if not containers:
        raise api.BadRequest(f"a container name must be specified for pod {pod}")
    message = f"a container name must be specified for pod {pod}, choose one of: [{' '.join(containers)}]"
    if init_containers:
        message += f" or one of the init containers: [{' '.join(init_containers)}]"
    raise api.BadRequest(message)


def previous_not_found(container: str, pod: str) -> api.BadRequest:
    """`kubectl logs --previous` for a container that has not terminated before."""
    return api.BadRequest(f'previous terminated container "{container}" in pod "{pod}" not found')


def waiting_to_start(container: str, pod: str, reason: str = "ContainerCreating") -> api.BadRequest:
    """The container has no attempt yet (image pulling, init containers still running, ...)."""
    if reason == "ErrImagePull":
        why = "image can't be pulled"
    elif reason == "ImagePullBackOff":
        why = "trying and failing to pull image"
    else:
        why = reason or "ContainerCreating"
    return api.BadRequest(f'container "{container}" in pod "{pod}" is waiting to start: {why}')


def not_running(container: str, pod: str) -> api.BadRequest:
    """exec/attach need a running process (logs do not: a terminated container's log is kept)."""
    return api.BadRequest(f'container "{container}" in pod "{pod}" is not running')


def no_host(pod: str) -> api.BadRequest:
    """The pod is not bound to a node yet, so no kubelet has anything to stream."""
    return api.BadRequest(f"pod {pod} does not have a host assigned")
