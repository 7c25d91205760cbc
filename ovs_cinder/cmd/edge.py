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

"""ovs-edge: the hypervisor-side NBD proxy to the storage routers.

    ovs-edge --config-file /etc/ovs-edge/ovs-edge.conf

Options: ``oslo-config-generator --namespace ovs_edge`` (etc/ovs-edge.conf.sample).
"""

import sys

from oslo_config import cfg
from oslo_log import log as logging
import uvloop

from ovs_cinder.edge import opts
from ovs_cinder.edge import process_memory
from ovs_cinder.edge import service as service_mod
from ovs_daemon import compiled

LOG = logging.getLogger(__name__)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    logging.register_options(conf)
    try:
        conf(argv, project='ovs-edge', prog='ovs-edge')
        conf.edge.token_file
    except (cfg.Error, ValueError) as exc:
        print('ovs-edge: error: %s' % exc, file=sys.stderr)
        return 2
    logging.setup(conf, 'ovs-edge')
    compiled.log_how_the_data_path_runs(LOG)
    process_memory.retain_freed_payloads(conf.edge.replay_buffer_mib)
    try:
        service = service_mod.EdgeService(conf)
        process_memory.freeze_start_up_objects()
        uvloop.run(service.run_until_signalled())
    except service_mod.StartupError as exc:
        print('ovs-edge: error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
