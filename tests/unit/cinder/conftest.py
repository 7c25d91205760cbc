from tests import cinder_threading  # noqa: F401  (before any cinder import)
