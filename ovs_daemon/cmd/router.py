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

"""ovs-router: the storage router daemon.

    ovs-router --config-file /etc/ovs-edge/ovs-router.conf

Options: ``oslo-config-generator --namespace ovs_daemon`` (see
etc/ovs-router.conf.sample).
"""

import sys

from oslo_config import cfg
from oslo_log import log as logging
import uvloop

from ovs_daemon import compiled
from ovs_daemon import opts
from ovs_daemon.router import service as service_mod

LOG = logging.getLogger(__name__)


def parse_config(argv):
    conf = cfg.ConfigOpts()
    opts.register_router_opts(conf)
    logging.register_options(conf)
    conf(argv, project='ovs-edge', prog='ovs-router')
    return conf


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        conf = parse_config(argv)
        # Checks required options now, not at first use.
        conf.router.id, conf.router.token_file
    except (cfg.Error, ValueError) as exc:
        print('ovs-router: error: %s' % exc, file=sys.stderr)
        return 2
    logging.setup(conf, 'ovs-router')
    compiled.log_how_the_data_path_runs(LOG)
    try:
        service = service_mod.RouterService(conf)
        uvloop.run(service.run_until_signalled())
    except service_mod.StartupError as exc:
        LOG.error('Router cannot start: %s', exc)
        print('ovs-router: error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
