"""The volume engine: thin, log-structured volumes over a fenced backend."""
