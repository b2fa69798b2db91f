"""The public names of kplane.client are pinned: removing or renaming one is a deliberate change."""

from __future__ import annotations

import kplane.client


def test_public_names_are_pinned() -> None:
    """kplane.client exports exactly these names, and each one resolves."""
    expected = {
        "Client", "Controller", "DelayingQueue", "DeletedFinalStateUnknown", "EventRecorder", "Indexer", "Informer",
        "LeaderElectionConfig", "LeaderElector", "Manager", "NotLeader", "RateLimitingQueue", "Reflector",
        "ResourceEventHandlerFuncs", "Result", "SharedInformerFactory", "ShutDown", "WorkQueue",
        "deletion_handling_key", "last_known_state", "meta_namespace_key", "retry_on_conflict", "split_key",
        "wait_for_cache_sync",
    }
    assert set(kplane.client.__all__) == expected
    for name in expected:
        assert getattr(kplane.client, name) is not None
