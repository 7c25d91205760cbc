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

"""How the s3 backend talks to an S3 endpoint: the client, what each error
means, and the retry policy.

botocore's own retries are switched off: botocore would resend a
conditional write after a timeout or a 5xx, and if the first attempt had in
fact landed, the resent one fails with 412 and a writer that owns its slot
would call itself fenced. Every retry is decided here instead: idempotent
calls (reads, listings, plain puts of data objects, deletes) are retried
with backoff; conditional writes come back to the backend, which first
reads what is committed.

botocore does not check the checksums of responses either: it would sum
each GET's data once more where the read cache sums its chunks anyway.
Every GET asks the store for its CRC-32 (``x-amz-checksum-mode``), and
the backend checks what came against it (see ``S3Backend.get_with_crc32s``).
"""

import dataclasses
import random
import time

import boto3
import botocore.config
import botocore.exceptions

from ovs_daemon.backends import base

# What an error from S3 means for the caller.
PRECONDITION = 'precondition'   # 412: the condition did not hold
CONFLICT = 'conflict'           # 409: a concurrent write to the same key
NOT_FOUND = 'not_found'         # 404 NoSuchKey / NoSuchUpload
OUT_OF_RANGE = 'out_of_range'   # 416: a ranged read past the end
TRANSIENT = 'transient'         # 5xx, throttling, timeouts, lost connections
FATAL = 'fatal'                 # anything else: bad credentials, no bucket...

_TRANSIENT_CODES = {'InternalError', 'ServiceUnavailable', 'SlowDown',
                    'RequestTimeout', 'Throttling', 'ThrottlingException',
                    'RequestTimeTooSkewed'}
_TRANSPORT_ERRORS = (botocore.exceptions.ConnectionError,
                     botocore.exceptions.HTTPClientError,
                     botocore.exceptions.ResponseStreamingError,
                     botocore.exceptions.IncompleteReadError)


class RetriesExhausted(base.BackendError):
    """A transient error outlasted every retry."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the store is and how to reach it; see ovs_daemon.opts."""

    bucket: str
    prefix: str = ''
    endpoint_url: str = None
    region: str = None
    access_key: str = dataclasses.field(default=None, repr=False)
    secret_key: str = dataclasses.field(default=None, repr=False)
    multipart_threshold: int = 64 << 20
    multipart_chunk: int = 16 << 20
    max_attempts: int = 6
    retry_base_delay: float = 0.05
    retry_max_delay: float = 2.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_connections: int = 32


def make_client(settings):
    """A boto3 client without botocore retries. Credentials from the
    settings, or boto3's standard chain (environment, shared files, instance
    role) when they are empty."""
    config = botocore.config.Config(
        retries={'total_max_attempts': 1, 'mode': 'standard'},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.max_connections,
        response_checksum_validation='when_required',
        s3={'addressing_style': 'path'} if settings.endpoint_url else None)
    credentials = {}
    if settings.access_key:
        credentials = {'aws_access_key_id': settings.access_key,
                       'aws_secret_access_key': settings.secret_key}
    client = boto3.session.Session().client(
        's3', endpoint_url=settings.endpoint_url or None,
        region_name=settings.region or None, config=config, **credentials)
    client.meta.events.register('before-sign.s3.GetObject', _ask_for_checksum)
    return client


def _ask_for_checksum(request, **kwargs):
    """The header botocore sends for ``ChecksumMode='ENABLED'``, without
    botocore then summing the response itself."""
    request.headers['x-amz-checksum-mode'] = 'ENABLED'


def classify(exc):
    """One of PRECONDITION, CONFLICT, NOT_FOUND, TRANSIENT, FATAL."""
    if isinstance(exc, _TRANSPORT_ERRORS):
        return TRANSIENT
    if not isinstance(exc, botocore.exceptions.ClientError):
        return FATAL
    code = exc.response.get('Error', {}).get('Code', '')
    status = exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode', 0)
    if status == 412 or code == 'PreconditionFailed':
        return PRECONDITION
    if status == 409 and code == 'ConditionalRequestConflict':
        return CONFLICT
    if code in ('NoSuchKey', 'NoSuchUpload', '404'):
        return NOT_FOUND
    if status == 416 or code == 'InvalidRange':
        return OUT_OF_RANGE
    if status >= 500 or code in _TRANSIENT_CODES:
        return TRANSIENT
    return FATAL


def describe(exc):
    """The error for a message: code and status, never request headers
    (they carry the signature)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get('Error', {})
        status = exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        return '%s (HTTP %s)' % (error.get('Code', 'error'), status)
    return type(exc).__name__


class Backoff:
    """Attempts with exponential backoff and full jitter."""

    def __init__(self, settings):
        self.settings = settings

    def attempts(self):
        """Yields attempt numbers from 0, sleeping before each retry."""
        for attempt in range(self.settings.max_attempts):
            if attempt:
                delay = min(self.settings.retry_max_delay,
                            self.settings.retry_base_delay * 2 ** attempt)
                time.sleep(random.uniform(0, delay))
            yield attempt

    def call(self, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` retrying transient errors: only for calls
        that may be repeated whatever the first one did. Other errors are
        raised as they are, for the caller to map."""
        last = None
        for _ in self.attempts():
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if classify(exc) != TRANSIENT:
                    raise
                last = exc
        raise RetriesExhausted('%s: %s after %d attempts'
                               % (what, describe(last),
                                  self.settings.max_attempts)) from last
