"""The control API shared by routers and their clients."""
