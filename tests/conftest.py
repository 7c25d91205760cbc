def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: starts real processes (ZooKeeper, namespaces); run by tox -e functional')
