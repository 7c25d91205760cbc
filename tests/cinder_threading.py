#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

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
