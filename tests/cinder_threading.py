"""Import before anything of cinder: run cinder on native threads.

cinder's test package would monkey-patch the whole test process with
eventlet, which breaks the tests that manage processes (and this project
uses no eventlet). cinder then picks its threading service backend, which
must happen before any other cinder import selects one. Being a module, it
runs once per process, whichever conftest imports it first.
"""

import os

os.environ['OS_CINDER_DISABLE_EVENTLET_PATCHING'] = '1'

from cinder import monkey_patch  # noqa: E402

monkey_patch.patch()
