"""Per-user personalisation: boosts, penalties, hard exclusions, recency, and learning.

A user's policy is a ``user_profile`` node in the tenant (so it is durable, tenant-scoped, and
a change to it invalidates cached results like any write). It holds additive log-weights per
``kind``, ``category`` and ``source`` value (a boost is positive, a penalty negative), the
values to exclude outright, and a recency preference. Feedback events (clicked, useful, not
useful) move that user's learned weights for the node's kind, category and source.

Reranking multiplies each hit's fused score by ``exp(sum of weights)`` and by
``1 + recency_weight * 0.5 ** (age / half_life)``; excluded hits are removed. The planner
over-fetches so that the page is still full after exclusions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..model import Hit, JSONObject, Node, prop_int, prop_number, prop_object, prop_strs
from ..store import Store
from ..validation import check_id, check_number, shown

__all__ = ["EVENTS", "FIELDS", "UserPolicy", "check_policy", "load_policy", "record_feedback",
           "rerank", "save_policy", "set_preferences"]

FIELDS = ("kind", "category", "source")
EVENTS = {"clicked": 0.05, "useful": 0.15, "not_useful": -0.2}
WEIGHT_LIMIT = 3.0
PROFILE_KIND = "user_profile"


@dataclass
class UserPolicy:
    """A user's preferences (see the module docstring)."""

    user: str
    boosts: dict[str, dict[str, float]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    learned: dict[str, dict[str, float]] = field(default_factory=dict)
    recency_half_life: float | None = None
    recency_weight: float = 0.0
    events: int = 0

    @property
    def empty(self) -> bool:
        return not (self.boosts or self.exclude or self.learned or self.recency_weight)

    def excluded(self, node: Node) -> bool:
        return any(getattr(node, f) in self.exclude.get(f, []) for f in FIELDS)

    def multiplier(self, node: Node, now: float) -> float:
        log_weight = sum(self.boosts.get(f, {}).get(str(getattr(node, f)), 0.0)
                         + self.learned.get(f, {}).get(str(getattr(node, f)), 0.0)
                         for f in FIELDS)
        factor = math.exp(max(-WEIGHT_LIMIT * 2, min(WEIGHT_LIMIT * 2, log_weight)))
        if self.recency_weight and self.recency_half_life:
            age = max(now - (node.updated or node.created or now), 0.0)
            factor *= 1.0 + self.recency_weight * 0.5 ** (age / self.recency_half_life)
        return factor


def profile_id(user: str) -> str:
    return f"user:{check_id(user)}"


def load_policy(store: Store, user: str) -> UserPolicy:
    """The user's policy; an empty one if they have none."""
    node = store.get_nodes([profile_id(user)]).get(profile_id(user))
    if node is None:
        return UserPolicy(user)
    props = node.props
    return UserPolicy(user, _weights(props, "boosts"), _lists(props, "exclude"),
                      _weights(props, "learned"), prop_number(props, "recency_half_life"),
                      prop_number(props, "recency_weight") or 0.0, prop_int(props, "events") or 0)


def _weights(props: JSONObject, key: str) -> dict[str, dict[str, float]]:
    """``{field: {value: weight}}`` as saved in a profile."""
    return {field: {value: weight for value in prop_object(by_value, field)
                    if (weight := prop_number(prop_object(by_value, field), value)) is not None}
            for by_value in [prop_object(props, key)] for field in by_value}


def _lists(props: JSONObject, key: str) -> dict[str, list[str]]:
    """``{field: [value, ...]}`` as saved in a profile."""
    saved = prop_object(props, key)
    return {field: prop_strs(saved, field) for field in saved}


def save_policy(store: Store, policy: UserPolicy) -> None:
    props: dict[str, Any] = {
        "boosts": policy.boosts, "exclude": policy.exclude, "learned": policy.learned,
        "recency_half_life": policy.recency_half_life, "recency_weight": policy.recency_weight,
        "events": policy.events}
    store.upsert_nodes([Node(profile_id(policy.user), kind=PROFILE_KIND, props=props,
                             source="personalisation")])


def set_preferences(
    policy: UserPolicy, *, boosts: object = None, exclude: object = None,
    recency_half_life: object = None, recency_weight: object = None,
) -> UserPolicy:
    """``policy`` with the given parts replaced (``None`` keeps a part), each checked for its
    shape first: ``{field: {value: weight}}``, ``{field: [value, ...]}``, numbers."""
    if boosts is not None:
        policy.boosts = {_text(name, "a personalisation field"): _boosts(by_value, name)
                         for name, by_value in _mapping(boosts, "boosts").items()}
    if exclude is not None:
        policy.exclude = {_text(name, "a personalisation field"): _strings(values, name)
                          for name, values in _mapping(exclude, "exclude").items()}
    if recency_half_life is not None:
        policy.recency_half_life = check_number("policy", "recency_half_life",
                                                recency_half_life)
    if recency_weight is not None:
        policy.recency_weight = check_number("policy", "recency_weight", recency_weight)
    return check_policy(policy)


def _mapping(value: object, what: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"personalisation {what} must be a mapping, got {shown(value)}")
    return value


def _boosts(by_value: object, name: object) -> dict[str, float]:
    return {_text(value, "a boosted value"): check_number("policy", f"boost of {shown(value)}",
                                                          weight)
            for value, weight in _mapping(by_value, f"boosts[{shown(name)}]").items()}


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {shown(value)}")
    return value


def _strings(values: object, name: object) -> list[str]:
    if not isinstance(values, list | tuple | set | frozenset):
        raise InvalidInput(f"exclude[{shown(name)}] must be a list of strings, got "
                           f"{shown(values)}")
    return [_text(value, f"a value excluded by {shown(name)}") for value in values]


def check_policy(policy: UserPolicy) -> UserPolicy:
    """Refuse unknown fields and non-finite or out-of-range weights."""
    for table in (policy.boosts, policy.learned):
        for name, values in table.items():
            if name not in FIELDS:
                raise InvalidInput(f"personalisation field must be one of {FIELDS}, "
                                   f"got {name!r}")
            for value, weight in values.items():
                if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                        or not math.isfinite(weight) or abs(weight) > WEIGHT_LIMIT:
                    raise InvalidInput(f"weight for {name}={value!r} must be a number within "
                                       f"±{WEIGHT_LIMIT}")
    for name in policy.exclude:
        if name not in FIELDS:
            raise InvalidInput(f"exclude field must be one of {FIELDS}, got {name!r}")
    if policy.recency_half_life is not None and not 0 < policy.recency_half_life < math.inf:
        raise InvalidInput("recency_half_life must be a positive number of seconds")
    if not 0.0 <= policy.recency_weight <= 10.0:
        raise InvalidInput("recency_weight must be within 0..10")
    return policy


def record_feedback(store: Store, user: str, node_id: str, event: str) -> UserPolicy:
    """Learn from one event on one node: its kind, category and source move by the event's
    step (clamped), in this user's policy only."""
    if event not in EVENTS:
        raise InvalidInput(f"event must be one of {sorted(EVENTS)}, got {event!r}")
    node = store.get_node(node_id)
    with store.transaction():
        policy = load_policy(store, user)
        for name in FIELDS:
            value = getattr(node, name)
            if value is None:
                continue
            learned = policy.learned.setdefault(name, {})
            moved = learned.get(str(value), 0.0) + EVENTS[event]
            learned[str(value)] = max(-WEIGHT_LIMIT, min(WEIGHT_LIMIT, moved))
        policy.events += 1
        save_policy(store, policy)
    return policy


def rerank(hits: list[Hit], policy: UserPolicy, now: float | None = None) -> list[Hit]:
    """Hits reordered by the user's policy, excluded ones removed; scores are multiplied and
    the factor is kept in ``scores["personal"]``."""
    if policy.empty:
        return hits
    now = time.time() if now is None else now
    kept = []
    for hit in hits:
        if policy.excluded(hit.node):
            continue
        factor = policy.multiplier(hit.node, now)
        kept.append(Hit(hit.node, hit.score * factor, {**hit.scores, "personal": factor},
                        hit.citation))
    return sorted(kept, key=lambda h: -h.score)
