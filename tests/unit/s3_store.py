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

"""An S3 store for the tests: moto's server in a process of its own, or the
real store named by the environment.

    OVS_TEST_S3_ENDPOINT  endpoint URL (e.g. http://127.0.0.1:9000 for MinIO;
                          "aws" for AWS S3 itself)
    OVS_TEST_S3_BUCKET    an existing bucket the tests may write to
    OVS_TEST_S3_REGION    region (optional)
    credentials           boto3's standard chain: AWS_ACCESS_KEY_ID and
                          AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...

Every test works under a prefix of its own and removes it at the end.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid

import boto3
import botocore.config

from ovs_daemon.backends import s3
from ovs_daemon.backends import s3_calls
from ovs_daemon.devcluster import sockets

MOTO_BUCKET = 'ovs-tests'
MOTO_CREDENTIALS = ('testing', 'testing')
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a test's store is: enough for another process to open it."""

    endpoint_url: str
    bucket: str
    region: str = 'us-east-1'
    credentials: tuple = None
    prefix: str = ''

    def under(self, prefix):
        return dataclasses.replace(self, prefix=prefix)

    def settings(self, **overrides):
        access, secret = self.credentials or (None, None)
        values = dict(bucket=self.bucket, prefix=self.prefix,
                      endpoint_url=self.endpoint_url, region=self.region,
                      access_key=access, secret_key=secret,
                      # Small parts, so that 16 MiB objects go multipart.
                      multipart_threshold=8 << 20, multipart_chunk=5 << 20,
                      retry_base_delay=0.01)
        values.update(overrides)
        return s3_calls.Settings(**values)

    def backend(self, **overrides):
        return s3.S3Backend(self.settings(**overrides))


def configured_place():
    """The real store named by the environment, or None."""
    endpoint = os.environ.get('OVS_TEST_S3_ENDPOINT')
    if not endpoint:
        return None
    bucket = os.environ.get('OVS_TEST_S3_BUCKET')
    if not bucket:
        raise RuntimeError('OVS_TEST_S3_ENDPOINT is set: set '
                           'OVS_TEST_S3_BUCKET to a bucket the tests may '
                           'write to')
    return Place(None if endpoint == 'aws' else endpoint, bucket,
                 region=os.environ.get('OVS_TEST_S3_REGION') or None)


class MotoServer:
    """moto's S3 server in a child process, stopped by its PID."""

    def __init__(self, log_path):
        self.port = sockets.free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self._log = open(log_path, 'wb')
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'ovs_daemon.devcluster.s3_server',
             '--port', str(self.port)],
            cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('moto server exited with %s; see %s'
                                   % (self.process.returncode, self._log.name))
            if sockets.can_connect('127.0.0.1', self.port, timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError('moto server did not listen on port %d' % self.port)

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()

    def place(self):
        place = Place(self.url, MOTO_BUCKET, credentials=MOTO_CREDENTIALS)
        client(place).create_bucket(Bucket=MOTO_BUCKET)
        return place


def client(place):
    access, secret = place.credentials or (None, None)
    return boto3.client(
        's3', endpoint_url=place.endpoint_url, region_name=place.region,
        aws_access_key_id=access, aws_secret_access_key=secret,
        config=botocore.config.Config(s3={'addressing_style': 'path'}))


def remove_prefix(place):
    s3_client = client(place)
    paginator = s3_client.get_paginator('list_objects_v2')
    for page in paginator.paginate(Bucket=place.bucket, Prefix=place.prefix):
        keys = [{'Key': item['Key']} for item in page.get('Contents', ())]
        if keys:
            s3_client.delete_objects(Bucket=place.bucket,
                                     Delete={'Objects': keys, 'Quiet': True})


def fresh_prefix():
    return 'ovs-test-%s/' % uuid.uuid4().hex[:12]
