"""Child process for the crash test: writes batches forever, acknowledging each commit.

Usage: python crash_child.py STORE FIRST_BATCH. Each batch is one transaction of nodes with
vectors and edges; after it commits the child prints ``ack N`` and flushes. Every few batches
it checkpoints the vector index, so kills also land in the middle of index saves.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

import loomdb

BATCH = 25
DIM = 16


def batch_ids(number: int) -> list[str]:
    return [f"b{number}-{j}" for j in range(BATCH)]


def main() -> None:
    store, first = sys.argv[1], int(sys.argv[2])
    db = loomdb.open(store)
    db.create_space("text", DIM, model="m")
    rng = np.random.default_rng(first)
    number = first
    while True:
        ids = batch_ids(number)
        with db.transaction():
            db.add_nodes([{"id": i, "text": f"batch {number} item", "props": {"b": number}}
                          for i in ids], vectors=rng.normal(size=(BATCH, DIM)))
            db.add_edges([{"src": a, "dst": b, "type": "next"}
                          for a, b in itertools.pairwise(ids)])
            if number >= 3:
                db.delete_nodes(batch_ids(number - 3)[:2])  # deletes too, for the index
        print(f"ack {number}", flush=True)
        if number % 4 == 0:
            db.checkpoint()
        number += 1


if __name__ == "__main__":
    main()
