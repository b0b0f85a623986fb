"""One way to pass a node: every method that takes a node id also takes the ``Node`` the API
returned (what a newcomer writes first), with the same result as the id."""

from __future__ import annotations

import inspect
import typing

import numpy as np

import loomdb
import loomdb.model
from loomdb import Database, Node

from .conftest import unit_vectors


def test_records_take_nodes_wherever_they_take_ids(db: Database) -> None:
    db.create_space("text", 8)
    a = db.add_node("a", kind="chunk", text="alpha", vector=unit_vectors(1, 8, 1)[0])
    b = db.add_node("b", kind="entity", text="beta")
    assert db.get_node(a) == db.get_node("a")
    assert db.get_nodes([a, b]).keys() == {"a", "b"}
    assert db.has_node(b)

    edge = db.add_edge(a, b, "mentions", weight=2.0)
    assert (edge.src, edge.dst) == ("a", "b")
    assert db.get_edges(src=a, dst=b) == [edge]
    assert db.add_edges([{"src": b, "dst": a, "type": "back"}]) == 1
    assert [n.id for n, _ in db.neighbors(a)] == ["b"]
    assert {n.id for n in db.expand(a, hops=1).nodes} == {"a", "b"}
    assert {n.id for n in db.expand([a, b], hops=1).nodes} == {"a", "b"}
    path = db.shortest_path(a, b)
    assert path is not None and [n.id for n in path.nodes] == ["a", "b"]

    db.set_vector(b, unit_vectors(1, 8, 2)[0])
    assert np.allclose(db.get_vector(b), db.get_vector("b"))
    assert db.get_vectors([a, b]).keys() == {"a", "b"}
    assert db.delete_vector(b) is True

    updated = db.update_node(a, props={"seen": True})
    assert updated.props == {"seen": True}
    assert db.delete_edge(b, a, "back") is True
    assert db.delete_node(b) is True
    assert db.delete_nodes([a]) == 1


def test_chats_and_enrichment_take_nodes(tmp_path: typing.Any) -> None:
    with loomdb.open(tmp_path / "store", ml=None, weaver=False) as db:
        chat = db.create_chat("trip planning", topic="travel")
        first = db.add_message(chat, "alice", "Alice met Bob in Paris")
        reply = db.add_message(chat, "bob", "Yes, at the Louvre", reply_to=first)
        assert db.get_edges(src=reply, types=["reply_to"])[0].dst == first.id
        assert db.entities_mentioned_in(first) == []  # not enriched yet, but no error
        assert db.enrich([first], ["summarize"]) == 1
        assert [job.node_id for job in db.jobs(first, status="queued")
                if job.task == "summarize"] == [first.id]
        db.feedback("ann", first, "useful")
        document = db.add_node("doc:x", kind="document", text="a document")
        db.delete_document(document)
        assert not db.has_node(document)


def test_every_public_method_with_an_id_parameter_accepts_a_node() -> None:
    """A lock on the rule: a new method that takes an id as ``str`` only fails here."""
    id_names = {"id", "ids", "src", "dst", "start", "goal", "a", "b", "chat", "reply_to"}
    created = {("add_node", "id"), ("create_chat", "id"), ("add_message", "id"),
               ("remember", "id"), ("ingest", "id")}  # ids of nodes being made
    wrong = []
    for name, method in inspect.getmembers(Database, inspect.isfunction):
        if name.startswith("_"):
            continue
        checked = [p for p in inspect.signature(method).parameters
                   if p in id_names and (name, p) not in created]
        if not checked:
            continue
        hints = typing.get_type_hints(method, {**vars(loomdb.model), **method.__globals__})
        for parameter in checked:
            hint = hints.get(parameter)
            if Node not in _members(hint):
                wrong.append(f"{name}({parameter}: {hint})")
    assert not wrong, wrong


def _members(hint: typing.Any) -> set[typing.Any]:
    """Every type a hint admits, through unions and sequences."""
    found = {hint}
    for arg in typing.get_args(hint):
        found |= _members(arg)
    return found
