"""The Database methods that answer converged queries: ``query``, ``find``, ``explain``,
``reason``, and the per-user personalisation they apply. Mixed into ``Database``; each method
is a thin call into ``loomdb.query`` or ``loomdb.memory``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from .errors import InvalidInput
from .memory.reasoning import ReasoningPath, strongest_paths
from .model import Hit
from .query.builder import QueryBuilder, query_from_arguments
from .query.engine import QueryEngine
from .query.personalize import UserPolicy, check_policy, load_policy, record_feedback, save_policy
from .query.plan import Plan, Query
from .validation import check_id, check_limit

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Retrieval"]


class Retrieval:
    """Converged queries for one tenant (see ``Database``)."""

    engine: QueryEngine

    @property
    def _db_(self) -> Database:
        return cast("Database", self)

    def _as_query(self, query: Query | str | None, arguments: dict[str, Any]) -> Query:
        if isinstance(query, str):  # db.query("words", ...): the text of the query
            if "text" in arguments:
                raise InvalidInput("give the query text once, positionally or as text=")
            query, arguments = None, {**arguments, "text": query}
        if query is not None and arguments:
            raise InvalidInput("pass a Query or keyword arguments, not both")
        if query is not None and not isinstance(query, Query):
            raise InvalidInput(f"expected a loomdb Query, got {type(query).__name__}")
        built = query if query is not None else query_from_arguments(**arguments)
        check_limit(built.limit, "k", 10_000)
        if isinstance(built.offset, bool) or not isinstance(built.offset, int) \
                or not 0 <= built.offset <= 100_000:
            raise InvalidInput("offset must be an integer from 0 to 100,000")
        return built

    def query(self, query: Query | str | None = None, /, **arguments: Any) -> list[Hit]:
        """Answer a converged query: a ``Query``, its text, or its keywords (``text``, ``vector``,
        ``lexical``, ``where``, ``kind``, ``near``, ``matching``, ``hops``, ``edge_types``,
        ``direction``, ``restrict``, ``k``, ``offset``, ``threshold``, ``user``, ``strategy``,
        ``weights``, ``multi_hop``, ``cache``). Hits carry each retriever's score, the fused
        score (``rrf``), how many retrievers agreed, and a citation for chunks."""
        built = self._as_query(query, arguments)
        return self.engine.run(self._db_, built).hits

    def find(self) -> QueryBuilder:
        """A fluent query: ``db.find().similar_to("...").near("x").limit(5).run()``."""
        return QueryBuilder(self._db_)

    def explain(self, query: Query | str | None = None, /, *, execute: bool = True,
                **arguments: Any) -> Plan:
        """The plan for a query: the chosen strategy and why, its steps with estimated costs,
        the alternatives weighed, and (executed by default) each step's actual time. The
        result cache is bypassed, so the plan shown is the one a cache miss would run."""
        built = replace(self._as_query(query, arguments), use_cache=False)
        return self.engine.run(self._db_, built, execute_plan=execute).plan

    def query_stats(self) -> dict[str, Any]:
        """Latency per strategy, the result cache's hit rate and latency, the planner's
        learned cost corrections."""
        return self.engine.stats()

    # -- reasoning -------------------------------------------------------------------------

    def reason(self, a: str, b: str, *, paths: int = 3, max_hops: int = 4) -> list[ReasoningPath]:
        """The strongest paths between two entities or concepts, each step with the edge and
        the source passages that support it."""
        return strongest_paths(self._db_, check_id(a), check_id(b), paths=paths,
                               max_hops=max_hops)

    # -- personalisation -------------------------------------------------------------------

    def user_policy(self, user: str) -> UserPolicy:
        return load_policy(self._db_, user)

    def set_user_policy(
        self, user: str, *, boosts: dict[str, dict[str, float]] | None = None,
        exclude: dict[str, list[str]] | None = None,
        recency_half_life: float | None = None, recency_weight: float | None = None,
    ) -> UserPolicy:
        """Set a user's boosts (positive) and penalties (negative) by kind, category and
        source, hard exclusions, and recency preference; unspecified parts are kept."""
        policy = load_policy(self._db_, user)
        if boosts is not None:
            policy.boosts = {f: dict(v) for f, v in boosts.items()}
        if exclude is not None:
            policy.exclude = {f: list(v) for f, v in exclude.items()}
        if recency_half_life is not None:
            policy.recency_half_life = recency_half_life
        if recency_weight is not None:
            policy.recency_weight = recency_weight
        save_policy(self._db_, check_policy(policy))
        return policy

    def feedback(self, user: str, id: str, event: str) -> UserPolicy:  # noqa: A002
        """Learn from ``event`` (``clicked``, ``useful``, ``not_useful``) on node ``id``."""
        return record_feedback(self._db_, user, check_id(id), event)
