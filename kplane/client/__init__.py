"""Client machinery every component uses: the API client, informers, the work queue, the
controller runtime, leader election and the event recorder.

The names below are the public surface (a test pins them); the modules behind them are
implementation detail.
"""

from kplane.client.client import Client, retry_on_conflict
from kplane.client.controller import Controller, Manager, Result
from kplane.client.events import EventRecorder
from kplane.client.informer import (
    DeletedFinalStateUnknown,
    Informer,
    Reflector,
    ResourceEventHandlerFuncs,
    SharedInformerFactory,
    deletion_handling_key,
    last_known_state,
    wait_for_cache_sync,
)
from kplane.client.leaderelection import LeaderElectionConfig, LeaderElector, NotLeader
from kplane.client.store import Indexer, meta_namespace_key, split_key
from kplane.client.workqueue import DelayingQueue, RateLimitingQueue, ShutDown, WorkQueue

__all__ = [
    "Client",
    "Controller",
    "DelayingQueue",
    "DeletedFinalStateUnknown",
    "EventRecorder",
    "Indexer",
    "Informer",
    "LeaderElectionConfig",
    "LeaderElector",
    "Manager",
    "NotLeader",
    "RateLimitingQueue",
    "Reflector",
    "ResourceEventHandlerFuncs",
    "Result",
    "SharedInformerFactory",
    "ShutDown",
    "WorkQueue",
    "deletion_handling_key",
    "last_known_state",
    "meta_namespace_key",
    "retry_on_conflict",
    "split_key",
    "wait_for_cache_sync",
]
