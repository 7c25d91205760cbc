import pytest

from ovs_daemon.backends import local

# Every backend in this list runs the whole conformance suite.
BACKENDS = ['local']


def make_backend(kind, tmp_path):
    if kind == 'local':
        return local.LocalBackend(tmp_path / 'store')
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend_spec(request, tmp_path):
    """(kind, root): enough for another process to open the same store."""
    return request.param, tmp_path


@pytest.fixture
def backend(backend_spec):
    return make_backend(*backend_spec)
