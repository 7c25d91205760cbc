"""The edge: a hypervisor-side NBD proxy to the storage routers (docs/edge.md)."""
