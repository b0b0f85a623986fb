"""Chats and messages: the graph they form, their enrichment, and bad input."""

from __future__ import annotations

import pytest

import loomdb
from loomdb.errors import Conflict, InvalidInput, NotFound

pytestmark = pytest.mark.ml


def test_alice_met_bob_in_paris(enriched_db: loomdb.Database) -> None:
    db = enriched_db
    chat = db.create_chat("Travel", topic="trips")
    message = db.add_message(chat.id, "alice", "Alice met Bob in Paris")
    assert message.kind == "message" and message.props["chat"] == chat.id
    assert db.wait_for_enrichment(60)
    assert db.get_vector(message.id).shape == (384,)
    found = {(e.text, e.props["label"]) for e in db.entities_mentioned_in(message.id)}
    assert found == {("Alice", "PERSON"), ("Bob", "PERSON"), ("Paris", "GPE")}


def test_messages_chain_reply_and_keep_the_chat_summary_current(
        enriched_db: loomdb.Database) -> None:
    db = enriched_db
    chat = db.create_chat("Support")
    first = db.add_message(chat.id, "carol", "My laptop will not boot after the update.")
    second = db.add_message(chat.id, "dave", "Did you try the recovery mode in GRUB?",
                            role="assistant", reply_to=first.id)
    third = db.add_message(chat.id, "carol", "Recovery mode worked, thank you Dave!")
    assert [m.props["position"] for m in (first, second, third)] == [0, 1, 2]
    assert {(e.src, e.dst) for e in db.get_edges(types=["next"])} == {
        (first.id, second.id), (second.id, third.id)}
    assert db.get_edges(src=second.id, types=["reply_to"])[0].dst == first.id
    assert len(db.get_edges(dst=chat.id, types=["part_of"])) == 3
    db.wait_for_enrichment(60)
    summary = db.get_node(chat.id).props["summary"]
    assert summary and set(summary.split()) <= set(
        " ".join(m.text or "" for m in (first, second, third)).split())
    db.add_message(chat.id, "dave", "Glad to hear it. Back up your files to the NAS tonight.")
    db.wait_for_enrichment(60)
    assert db.get_node(chat.id).props["summarized_at"] > 0
    assert len(db.jobs()) == 0


def test_a_repeated_message_reinforces_the_first_instead_of_duplicating_it(
        enriched_db: loomdb.Database) -> None:
    db = enriched_db
    chat = db.create_chat("c")
    first = db.add_message(chat.id, "a", "The deploy is scheduled for Friday at noon.")
    db.wait_for_enrichment(60)
    again = db.add_message(chat.id, "b", "The deploy is scheduled for Friday at noon!")
    novel = db.add_message(chat.id, "c", "Penguins cannot fly but swim very well.")
    db.wait_for_enrichment(60)
    repeat = db.get_node(again.id)
    assert repeat.props["duplicate_of"] == first.id and repeat.props["novelty"] < 0.08
    assert db.get_edges(src=again.id, types=["reinforces"])[0].dst == first.id
    original = db.get_node(first.id)
    assert original.strength == 2.0 and original.access_count == 1 and original.last_accessed
    assert db.get_vectors([again.id]) == {}  # the repeat is not indexed twice
    assert db.get_node(novel.id).props["novelty"] > 0.5 and db.get_vector(novel.id).shape
    assert db.entities_mentioned_in(again.id) == []


def test_remember_gates_repeats(enriched_db: loomdb.Database) -> None:
    first = enriched_db.remember("The user is allergic to peanuts.")
    assert not first.reinforced and first.novelty.score == 1.0
    repeat = enriched_db.remember("The user is allergic to peanuts")
    assert repeat.reinforced and repeat.node.id == first.node.id
    assert repeat.node.strength == 2.0 and repeat.novelty.nearest == first.node.id
    other = enriched_db.remember("The user's favourite colour is green.")
    assert not other.reinforced and other.node.props["novelty"] > 0.3


def test_bad_chat_input_is_refused_and_changes_nothing(enriched_db: loomdb.Database) -> None:
    db = enriched_db
    chat = db.create_chat("c", id="chat-1")
    seq = db.seq
    for call in (lambda: db.add_message("nope", "a", "hi"),
                 lambda: db.add_message(chat.id, "a", "hi", reply_to="missing")):
        with pytest.raises(NotFound):
            call()
    for bad in (lambda: db.add_message(chat.id, "", "hi"),
                lambda: db.add_message(chat.id, "a", "   "),
                lambda: db.add_message(chat.id, "a", "hi", role="wizard"),
                lambda: db.create_chat(""),
                lambda: db.add_message(chat.id, "a", "x" * 1_000_001)):
        with pytest.raises(InvalidInput):
            bad()
    with pytest.raises(Conflict):
        db.create_chat("again", id="chat-1")
    assert db.seq == seq and db.jobs() == []
    with pytest.raises(NotFound):
        db.entities_mentioned_in("missing")
