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

"""The nova evacuate scenario, in nova's call order, against cinder's real
services: two hypervisors (a network namespace each, with an edge and the
os-brick connector), routers on hosts of their own.

Host A attaches and a guest writes; A is cut off from the network. nova
evacuates the instance to B: a reserved attachment for B, A's attachment
deleted (the driver must not need host A for that), B's attachment updated
with B's connector, ``connect_volume`` on B. Everything A's guest got
acknowledged is on B. When A comes back its edge can neither read nor write
the volume, and nova's clean-up there, ``disconnect_volume(force=True)`` with
B's connection info, succeeds and changes nothing.
"""

import json
import os
import sys
import time
import uuid

from ovs_daemon.devcluster import netns
from tests.cinder_services import base
from tests.functional.clients import qemu_io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Hypervisor:
    """A host with an edge; runs nova-compute's os-brick calls and the guest
    inside the host's network namespace (tests/cinder_services/hypervisor.py)."""

    def __init__(self, name, host, edge, workdir):
        self.name = name
        self.host = host
        self.edge = edge
        self.workdir = workdir
        self.env = {'PYTHONPATH': ROOT}

    def _command(self, *args):
        return [sys.executable, '-m', 'tests.cinder_services.hypervisor',
                self.edge['control']] + list(args)

    def _run(self, *args, request=None, timeout=60):
        argv = ['env'] + ['%s=%s' % item for item in self.env.items()] + self._command(*args)
        result = self.host.exec(argv, timeout=timeout, check=False,
                                input=None if request is None else json.dumps(request))
        if result.returncode != 0:
            raise AssertionError('%s on %s failed:\n%s' % (args[0], self.name, result.stderr))
        return json.loads(result.stdout)

    def connector_properties(self):
        return self._run('properties', self.name, self.host.address)

    def connect_volume(self, attachment):
        return self._run('connect', request=attachment)

    def disconnect_volume(self, attachment, device_info, force=False):
        return self._run('disconnect', *(['--force'] if force else []),
                         request={'attachment': attachment, 'device_info': device_info})

    def start_guest(self, device):
        directory = os.path.join(self.workdir, 'guest-%s' % self.name)
        os.makedirs(directory)
        process = self.host.start('guest-%s' % self.name,
                                  self._command('guest', device['path'], device['volume'],
                                                directory),
                                  directory, env=self.env)
        return Guest(process, directory)

    def verify(self, device, guest):
        return self._run('verify', device['path'], device['volume'], guest.directory,
                         timeout=120)

    def attached_volumes(self):
        return self._run('attached')


class Guest:
    def __init__(self, process, directory):
        self.process = process
        self.directory = directory

    def writes(self):
        try:
            with open(os.path.join(self.directory, 'writes')) as f:
                return int(f.read() or 0)
        except FileNotFoundError:
            return 0

    def wait_for_writes(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while self.writes() < count:
            self.process.raise_if_exited('writing')
            if time.monotonic() > deadline:
                raise AssertionError('the guest wrote %d of %d blocks' % (self.writes(), count))
            time.sleep(0.1)

    def stop(self, timeout=120):
        """Ask the guest to stop; its outstanding IO ends in EIO once the edge
        gives up (the edge's failover timeout)."""
        open(os.path.join(self.directory, 'stop'), 'w').close()
        deadline = time.monotonic() + timeout
        while self.process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.process.stop()
        with open(os.path.join(self.directory, 'guest.json')) as f:
            return json.load(f)


class NovaEvacuateTest(base.CinderServicesTestBase):

    def start_vpool(self, vpool, workdir):
        network = netns.Network(prefix='ovsev', subnet='10.213.207.0/24')
        self.addCleanup(network.destroy)
        self.addCleanup(vpool.down)
        self.hosts = {name: network.add_host(name) for name in ('r1', 'r2', 'hva', 'hvb')}
        vpool.up(routers=2, sites=['a', 'a'],
                 hosts={name: self.hosts[name] for name in ('r1', 'r2')},
                 zookeeper_host=network.address)
        self.hypervisors = {}
        for name in ('hva', 'hvb'):
            # A short failover timeout: the cut-off guest's IO ends in EIO
            # soon instead of after a minute.
            edge = vpool.add_edge(name, site='a', host=self.hosts[name],
                                  options={'edge': {'failover_timeout': 3.0}})
            self.hypervisors[name] = Hypervisor(name, self.hosts[name], edge, workdir)

    def _attach(self, volume_id, instance_uuid, hypervisor):
        """nova's attach: reserve, update with the host's connector, connect."""
        attachment = self._attachment_create(volume_id, instance_uuid)
        self.assertEqual('reserved', attachment['status'])
        attachment = self._attachment_update(attachment['id'],
                                             hypervisor.connector_properties())
        device = hypervisor.connect_volume(attachment)
        self._attachment_complete(attachment['id'])
        return attachment, device

    def test_evacuate_from_a_host_cut_off_from_the_network(self):
        hva, hvb = self.hypervisors['hva'], self.hypervisors['hvb']
        volume = self._volume(size=1)
        instance = str(uuid.uuid4())
        attachment_a, device_a = self._attach(volume['id'], instance, hva)
        self.assertEqual('ovs_edge', attachment_a['connection_info']['driver_volume_type'])
        self.assertEqual(['hva'], self._backend(volume['id'])['attachments'])
        guest = hva.start_guest(device_a)
        self.addCleanup(guest.process.stop)
        guest.wait_for_writes(2000)
        before = self._backend(volume['id'])

        self.hosts['hva'].isolate()
        state = guest.stop()
        self.assertGreater(len(state['acked']), 0)
        self.assertNotEqual([], state['errors'])    # A's guest is cut off: its IO fails

        # nova evacuate, on host B.
        attachment_b = self._attachment_create(volume['id'], instance)
        self.assertEqual('reserved', attachment_b['status'])
        self._attachment_delete(attachment_a['id'])
        attachment_b = self._attachment_update(attachment_b['id'],
                                               hvb.connector_properties())
        device_b = hvb.connect_volume(attachment_b)
        self._attachment_complete(attachment_b['id'])

        checked = hvb.verify(device_b, guest)
        self.assertEqual(len(state['acked']), checked['checked'])
        self.assertEqual([], checked['wrong'])                  # nothing acknowledged lost
        record = self._backend(volume['id'])
        self.assertEqual(['hvb'], record['attachments'])
        self.assertEqual((before['owner'], before['epoch']), (record['owner'], record['epoch']))
        self.assertEqual('in-use', self.api.get_volume(volume['id'])['status'])

        # Host A comes back: its edge still has the volume, with a revoked token.
        self.hosts['hva'].heal()
        for command in ('read 0 4k', 'write -P 7 0 4k'):
            out = qemu_io(device_a['uri'], command, expect_ok=False)
            self.assertIn('Input/output error', out)
        hva.disconnect_volume(attachment_b, None, force=True)
        self.assertEqual([], hva.attached_volumes())
        self.assertEqual([device_b['volume']], hvb.attached_volumes())
        after = self._backend(volume['id'])
        self.assertEqual(['hvb'], after['attachments'])
        self.assertEqual((record['owner'], record['epoch']), (after['owner'], after['epoch']))
        self.assertEqual([], hvb.verify(device_b, guest)['wrong'])
