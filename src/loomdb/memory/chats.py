"""Chats and messages: conversations as graph nodes that the weaver enriches.

A chat is a ``chat`` node. Each message is a ``message`` node, ``part_of`` its chat, linked
from the message before it by ``next`` and to the message it answers by ``reply_to``. Adding a
message enqueues its embedding (entities follow once it is embedded, unless novelty gating
finds it repeats an earlier message) and a refresh of the chat's summary, in the same
transaction as the message itself.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from ..errors import InvalidInput, NotFound
from ..model import Edge, JSONObject, Node, prop_int, prop_str
from ..storage.base import JobSpec
from ..store import Store
from ..validation import check_id
from ..weaver.activity import EMBED, SUMMARIZE
from ..weaver.linking import MENTIONS

__all__ = ["ROLES", "MessageRef", "add_message", "create_chat", "entities_mentioned_in"]

ROLES = ("user", "assistant", "system", "tool")
MAX_MESSAGE_CHARS = 1_000_000


@dataclass(frozen=True)
class MessageRef:
    """A new message's id with its position in the chat (0-based)."""

    id: str
    chat: str
    position: int


def create_chat(store: Store, title: str, topic: str | None = None, *,
                chat_id: str | None = None, props: JSONObject | None = None) -> Node:
    """A new chat node (id generated unless given); ``Conflict`` if the id exists."""
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("a chat needs a non-empty title")
    cid = check_id(chat_id) if chat_id is not None else f"chat:{uuid.uuid4().hex[:16]}"
    return store.add_node(cid, kind="chat", text=title, category=topic,
                          props={**(props or {}), "title": title, "topic": topic,
                                 "messages": 0, "last_message": None})


def _chat(store: Store, chat: str) -> Node:
    node = store.get_nodes([check_id(chat)]).get(chat)
    if node is None or node.kind != "chat":
        raise NotFound(f"no chat {chat!r} in tenant {store.tenant_name!r}")
    return node


def _check_message(sender: str, content: str, role: str) -> None:
    if not isinstance(sender, str) or not sender.strip():
        raise InvalidInput("a message needs a sender")
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput("a message needs non-empty content")
    if len(content) > MAX_MESSAGE_CHARS:
        raise InvalidInput(f"a message holds at most {MAX_MESSAGE_CHARS:,} characters")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}, got {role!r}")


def add_message(store: Store, chat: str, sender: str, content: str, role: str = "user", *,
                reply_to: str | None = None, message_id: str | None = None,
                props: JSONObject | None = None,
                created: float | None = None) -> MessageRef:
    """Append a message to ``chat`` and queue its enrichment, atomically."""
    _check_message(sender, content, role)
    mid = check_id(message_id) if message_id is not None else f"msg:{uuid.uuid4().hex}"
    with store.transaction():
        chat_node = _chat(store, chat)
        if reply_to is not None and store.get_nodes([check_id(reply_to)]).get(reply_to) is None:
            raise NotFound(f"reply_to: no message {reply_to!r}")
        position = prop_int(chat_node.props, "messages") or 0
        previous = prop_str(chat_node.props, "last_message")
        store.add_nodes([Node(mid, kind="message", text=content, source=sender, category=role,
                              created=created if created is not None else time.time(),
                              props={**(props or {}), "chat": chat, "sender": sender,
                                     "role": role, "position": position})])
        edges = [Edge(mid, chat, "part_of")]
        if previous is not None and store.has_node(previous):
            edges.append(Edge(previous, mid, "next"))
        if reply_to is not None:
            edges.append(Edge(mid, reply_to, "reply_to"))
        store.add_edges(edges)
        store.update_node(chat, props={**chat_node.props, "messages": position + 1,
                                       "last_message": mid})
        store.backend.enqueue_jobs(store.tenant_name,
                                   [JobSpec(EMBED, mid), JobSpec(SUMMARIZE, chat)])
    return MessageRef(mid, chat, position)


def entities_mentioned_in(store: Store, node_id: str) -> list[Node]:
    """The entity nodes a message (or chunk) mentions, most mentioned first."""
    edges = store.get_edges(src=check_id(node_id), types=[MENTIONS], limit=10_000)
    if not edges and not store.has_node(node_id):
        raise NotFound(f"node {node_id!r} does not exist in tenant {store.tenant_name!r}")
    nodes = store.get_nodes([e.dst for e in edges])
    ranked = sorted(edges, key=lambda e: -e.weight)
    return [nodes[e.dst] for e in ranked if e.dst in nodes]
