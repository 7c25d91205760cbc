"""Object stores a vPool keeps its volumes in; see ``base`` for the contract."""
