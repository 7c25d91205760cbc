"""Every source file carries the Apache License 2.0 header (LICENSE)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIRS = ('ovs_daemon', 'ovs_cinder', 'tests', 'bench', 'tools', 'devstack', '.ci',
               'releasenotes')
SHELL_SCRIPTS_WITHOUT_SUFFIX = ('.ci/run', 'devstack/settings', 'devstack/override-defaults')
HEADER = 'Licensed under the Apache License, Version 2.0'


def source_files():
    for top in SOURCE_DIRS:
        for directory, subdirs, files in os.walk(os.path.join(REPO, top)):
            subdirs[:] = [d for d in subdirs if d != '__pycache__']
            for name in files:
                path = os.path.relpath(os.path.join(directory, name), REPO)
                if name.endswith(('.py', '.sh')) or path in SHELL_SCRIPTS_WITHOUT_SUFFIX:
                    yield path
    yield 'setup.py'


def lacks_header(path):
    with open(os.path.join(REPO, path)) as f:
        text = f.read()
    # An empty package marker has nothing to license.
    return bool(text.strip()) and HEADER not in text[:1000]


def test_every_source_file_has_the_license_header():
    assert [p for p in sorted(source_files()) if lacks_header(p)] == []


def test_license_is_apache_2():
    with open(os.path.join(REPO, 'LICENSE')) as f:
        assert 'Apache License\n                           Version 2.0' in f.read()
