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

import os
import sys

import setuptools

# The data path's modules are compiled with Cython (pyproject.toml's build
# requirements bring it); ovs_daemon.compiled lists them. setup.py's
# directory is not on the path of pip's build.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ovs_daemon import compiled  # noqa: E402

setuptools.setup(
    setup_requires=['pbr>=6.1.0'],
    pbr=True,
    ext_modules=compiled.extensions())
