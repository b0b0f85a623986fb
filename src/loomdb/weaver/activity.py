"""Activity levels: how much enrichment the weaver does while the application is busy.

- ``high``: only what queries need now — embeddings. Everything else waits in the queue.
- ``normal`` (default): embeddings, then entities, co-occurrence and summaries.
- ``sleep``: all of that plus consolidation (memory strength decay), in larger batches.

Within a level, tasks are claimed in this priority order, so a burst of entity or summary
work never delays the embeddings that make new text searchable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidInput

__all__ = ["LEVELS", "PRIORITY", "TASK_NAMES", "ActivityLevel", "LevelPolicy", "policy"]

ActivityLevel = Literal["high", "normal", "sleep"]

EMBED, ENTITIES, COOCCUR, SUMMARIZE, CONSOLIDATE = (
    "embed", "entities", "cooccur", "summarize", "consolidate")
PRIORITY: tuple[str, ...] = (EMBED, ENTITIES, COOCCUR, SUMMARIZE, CONSOLIDATE)
TASK_NAMES = PRIORITY


@dataclass(frozen=True)
class LevelPolicy:
    """What a level runs and how: the tasks, jobs claimed per batch, and the pause between
    batches (seconds) that leaves the writer lock and the CPU to the application."""

    tasks: tuple[str, ...]
    batch: int
    pause: float


LEVELS: dict[str, LevelPolicy] = {
    "high": LevelPolicy((EMBED,), batch=32, pause=0.05),
    "normal": LevelPolicy((EMBED, ENTITIES, COOCCUR, SUMMARIZE), batch=64, pause=0.0),
    "sleep": LevelPolicy(PRIORITY, batch=256, pause=0.0),
}


def policy(level: str) -> LevelPolicy:
    """The policy of ``level``; ``InvalidInput`` for an unknown one."""
    if level not in LEVELS:
        raise InvalidInput(f"activity level must be one of {sorted(LEVELS)}, got {level!r}")
    return LEVELS[level]
