"""Storage backends: the only source of truth. See ``base.Backend`` for the contract."""
