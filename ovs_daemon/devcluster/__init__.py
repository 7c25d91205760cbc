"""Real processes for ``ovs-devcluster`` and the system tests.

ZooKeeper servers and ensembles, background processes that can be found again
from a pid file, and network namespaces that stand in for separate hosts.
"""
