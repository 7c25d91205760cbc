"""The storage router: owns volumes, serves them over NBD and arbitrates ownership in ZooKeeper."""
