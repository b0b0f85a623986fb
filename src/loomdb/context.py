"""The small context the pipelines receive instead of the ``Database``.

A ``Context`` is one tenant's ``Store`` (backend, index view, store settings, tenant) with the
store-wide parts enrichment needs: the ML provider, loaded on first use, and the enrichment
settings. The facade builds one when it opens a store and derives a tenant's with
``for_tenant``; the pipelines (ingest, weaver, memory, query, eval) take it and never import
the facade, so the layers only point down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .config import EnrichmentSettings, StoreSettings
from .errors import ModelMismatch, NotFound
from .index import VectorIndex
from .ml.bridge import MLProvider
from .model import VectorSpace
from .storage.base import Backend
from .store import Store

__all__ = ["Context", "ProviderSlot"]


class ProviderSlot:
    """The store's ML provider, built by ``factory`` on first use and then kept, so opening a
    store loads no model. Shared by every tenant's context."""

    def __init__(self, factory: Callable[[], MLProvider]) -> None:
        self._factory = factory
        self._provider: MLProvider | None = None
        self._lock = threading.Lock()

    def get(self) -> MLProvider:
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    self._provider = self._factory()
        return self._provider


@dataclass(frozen=True)
class Context:
    """What a pipeline works with: one tenant's records and the store-wide parts."""

    store: Store
    providers: ProviderSlot
    enrichment: EnrichmentSettings = field(default_factory=EnrichmentSettings)

    @property
    def backend(self) -> Backend:
        return self.store.backend

    @property
    def view(self) -> VectorIndex:
        return self.store.view

    @property
    def settings(self) -> StoreSettings:
        return self.store.settings

    @property
    def tenant(self) -> str:
        return self.store.tenant_name

    @property
    def provider(self) -> MLProvider:
        """The ML provider (loaded now if this is its first use)."""
        return self.providers.get()

    def for_tenant(self, tenant: str) -> Context:
        """The same parts, scoped to ``tenant``."""
        return replace(self, store=self.store.records_of(tenant))

    def embedding_space(self) -> VectorSpace:
        """The space embeddings go to, created for the provider's model if missing;
        ``ModelMismatch`` if it holds another model's vectors."""
        name, provider = self.enrichment.space, self.provider
        try:
            space = self.store.space(name)
        except NotFound:
            return self.store.create_space(name, dim=provider.dim, model=provider.model_id)
        if space.model != provider.model_id or space.dim != provider.dim:
            raise ModelMismatch(
                f"space {name!r} holds {space.model} ({space.dim}-d) vectors; the provider "
                f"makes {provider.model_id} ({provider.dim}-d): use another space or the "
                "same model")
        return space
