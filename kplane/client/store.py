"""An indexed in-memory object store: the informer's cache (client-go's `thread_safe_store` + `index`).

Objects are keyed `namespace/name` (`name` for cluster-scoped kinds). Named index functions map
an object to zero or more index values; `by_index(name, value)` returns the objects indexed
under a value without scanning the store.

Invariants (checked by tests/unit/test_store.py):
- `_indices[name][value]` holds key k  iff  k is in `_items` and value is in `_index_funcs[name](_items[k])`
  (as computed when k was last written; `_values[name][k]` remembers that result).
- No empty sets are kept in `_indices`, so `index_values(name)` lists only live values.

Concurrency: an asyncio program touches the store from one thread, and no method awaits, so
every method is atomic with respect to other coroutines. The store is not thread-safe.

Cached objects are read-only to callers. The store hands out the very message it holds (no
copy): informers serve many readers from hot paths, and a deep copy per read would cost more
than everything else a lister does. Protobuf messages cannot be frozen, so the contract is
enforced by a mutation detector instead (client-go's `KUBE_CACHE_MUTATION_DETECTOR`): when it
is on, the store remembers each object's serialized bytes and raises `CacheMutationError` as
soon as a write or a read of that key, or `check_mutations()`, finds the object changed. It is
on when `KPLANE_CACHE_MUTATION_DETECTOR` or `KPLANE_TEST` is set (the test suite sets the
latter). To change an object, copy it first: `new = type(obj)(); new.CopyFrom(obj)`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf.message import Message

from kplane.logs import get_logger

IndexFunc = Callable[[Message], list[str]]
KeyFunc = Callable[[Message], str]

NAMESPACE_INDEX = "namespace"
NODE_NAME_INDEX = "spec.nodeName"
OWNER_UID_INDEX = "ownerUID"

log = get_logger(module="kplane.client.store")


class CacheMutationError(AssertionError):
    """A cached object was modified in place by its reader: a programming error, never retried."""


def meta_namespace_key(obj: Message) -> str:
    """`namespace/name`, or `name` for an object without a namespace (cluster-scoped)."""
    meta = obj.metadata  # type: ignore[attr-defined]
    if meta.namespace:
        return f"{meta.namespace}/{meta.name}"
    return str(meta.name)


def split_key(key: str) -> tuple[str, str]:
    """The (namespace, name) of a key made by `meta_namespace_key`; namespace is "" for `name`."""
    parts = key.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise ValueError(f"unexpected key format: {key!r}")


def namespace_index_func(obj: Message) -> list[str]:
    """Index by `metadata.namespace` ("" for cluster-scoped objects, as client-go does)."""
    return [str(obj.metadata.namespace)]  # type: ignore[attr-defined]


def pods_by_node_index_func(obj: Message) -> list[str]:
    """Index pods by `spec.nodeName`; unbound pods (and other kinds) are not indexed."""
    spec = getattr(obj, "spec", None)
    node = getattr(spec, "nodeName", "") if spec is not None else ""
    return [str(node)] if node else []


def by_owner_uid_index_func(obj: Message) -> list[str]:
    """Index by the uid of every `metadata.ownerReferences` entry."""
    return [str(ref.uid) for ref in obj.metadata.ownerReferences if ref.uid]  # type: ignore[attr-defined]


def _detector_enabled() -> bool:
    flag = os.environ.get("KPLANE_CACHE_MUTATION_DETECTOR", "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no", "off")
    return bool(os.environ.get("KPLANE_TEST"))


def _fingerprint(obj: Message) -> bytes:
    return obj.SerializeToString(deterministic=True)


class Indexer:
    """A keyed, indexed cache of protobuf objects. Returned objects are shared: never mutate them.

    The `NAMESPACE_INDEX` index is always present; `indexers` and `add_indexers` add more.
    """

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None, *, key_func: KeyFunc = meta_namespace_key,
                 detect_mutations: bool | None = None) -> None:
        self.key_func = key_func
        self._items: dict[str, Message] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        # index name -> index value -> keys
        self._indices: dict[str, dict[str, set[str]]] = {}
        # index name -> key -> the values it was indexed under (so removal never re-runs the function
        # on an object that might have been changed since)
        self._values: dict[str, dict[str, tuple[str, ...]]] = {}
        self.detect_mutations = _detector_enabled() if detect_mutations is None else detect_mutations
        self._fingerprints: dict[str, bytes] = {}
        # The resourceVersion of the last `replace` (the list it came from); "" before any.
        self.resource_version = ""
        # Every store answers "objects in namespace X" (listers need it); callers add the rest.
        self.add_indexers({NAMESPACE_INDEX: namespace_index_func, **(indexers or {})})

    # -- writes --------------------------------------------------------------------------------

    def add(self, obj: Message) -> None:
        """Insert or overwrite the object under its key (add of an existing key is an update)."""
        self._put(self.key_func(obj), obj)

    def update(self, obj: Message) -> None:
        self._put(self.key_func(obj), obj)

    def delete(self, obj: Message) -> None:
        """Remove the object's key; deleting an absent key is a no-op."""
        self.delete_key(self.key_func(obj))

    def delete_key(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is None:
            return
        self._verify(key, old)
        self._fingerprints.pop(key, None)
        self._unindex(key)

    def replace(self, objs: Iterable[Message], resource_version: str) -> None:
        """Make the store hold exactly `objs` (the result of a list at `resource_version`)."""
        if self.detect_mutations:
            self.check_mutations()
        self._items = {}
        self._fingerprints = {}
        self._indices = {name: {} for name in self._index_funcs}
        self._values = {name: {} for name in self._index_funcs}
        for obj in objs:
            self._put(self.key_func(obj), obj)
        self.resource_version = resource_version

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Register more index functions; existing objects are indexed by them at once.

        Re-registering a name with the very same function is a no-op (shared informers get the
        same request from several controllers); a different function under a taken name is an error.
        """
        for name, func in indexers.items():
            existing = self._index_funcs.get(name)
            if existing is not None:
                if existing is not func:
                    raise ValueError(f"indexer {name!r} already exists with a different function")
                continue
            self._index_funcs[name] = func
            self._indices[name] = {}
            self._values[name] = {}
            for key, obj in self._items.items():
                self._index_one(name, func, key, obj)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, obj: Message) -> Message | None:
        """The cached object with the same key as `obj`, or None."""
        return self.get_by_key(self.key_func(obj))

    def get_by_key(self, key: str) -> Message | None:
        obj = self._items.get(key)
        if obj is not None:
            self._verify(key, obj)
        return obj

    def list(self) -> builtins.list[Message]:
        return builtins.list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        return builtins.list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def by_index(self, index_name: str, value: str) -> builtins.list[Message]:
        """The objects whose `index_name` function returned `value`."""
        return [self._items[k] for k in self.index_keys(index_name, value)]

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """The keys of the objects whose `index_name` function returned `value`, sorted."""
        index = self._index(index_name)
        return sorted(index.get(value, ()))

    def index_values(self, index_name: str) -> builtins.list[str]:
        """Every value some object is indexed under in `index_name`, sorted."""
        return sorted(self._index(index_name))

    def get_indexers(self) -> dict[str, IndexFunc]:
        return dict(self._index_funcs)

    def check_mutations(self) -> None:
        """Raise CacheMutationError if any cached object changed since it was stored (detector on)."""
        if not self.detect_mutations:
            return
        for key, obj in self._items.items():
            self._verify(key, obj)

    # -- internals -----------------------------------------------------------------------------

    def _index(self, index_name: str) -> dict[str, set[str]]:
        try:
            return self._indices[index_name]
        except KeyError:
            raise KeyError(f"index {index_name!r} does not exist") from None

    def _put(self, key: str, obj: Message) -> None:
        old = self._items.get(key)
        if old is not None:
            self._verify(key, old)
            self._unindex(key)
        self._items[key] = obj
        if self.detect_mutations:
            self._fingerprints[key] = _fingerprint(obj)
        for name, func in self._index_funcs.items():
            self._index_one(name, func, key, obj)

    def _index_one(self, name: str, func: IndexFunc, key: str, obj: Message) -> None:
        try:
            values = tuple(dict.fromkeys(func(obj)))
        except Exception as exc:
            # An index function that chokes on one object must not lose the object or stop the
            # informer (garbage is logged, everything else keeps working): it is left unindexed.
            log.error("index function failed; object left out of the index", index=name, key=key,
                      resourceVersion=_rv(obj), error=repr(exc))
            values = ()
        if not values:
            return
        self._values[name][key] = values
        index = self._indices[name]
        for value in values:
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str) -> None:
        for name, by_key in self._values.items():
            values = by_key.pop(key, ())
            index = self._indices[name]
            for value in values:
                keys = index.get(value)
                if keys is None:
                    continue
                keys.discard(key)
                if not keys:
                    del index[value]

    def _verify(self, key: str, obj: Message) -> None:
        if not self.detect_mutations:
            return
        expected = self._fingerprints.get(key)
        if expected is not None and _fingerprint(obj) != expected:
            raise CacheMutationError(
                f"cached object {key!r} (resourceVersion {_rv(obj)}) was modified in place; "
                f"copy it before changing it")


def _rv(obj: Any) -> str:
    try:
        return str(obj.metadata.resourceVersion)
    except AttributeError:
        return ""
