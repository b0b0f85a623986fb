"""The weaver: background enrichment through a durable job queue.

``activity`` (what runs at each activity level), ``tasks`` (embed, entities, co-occurrence,
summaries, consolidation), ``linking`` (the entity graph), ``worker`` (the thread that claims
and runs jobs).
"""
