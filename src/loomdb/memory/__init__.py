"""Memory: chats and messages, memories with novelty gating, strength and decay."""
