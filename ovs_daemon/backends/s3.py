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

"""The ``s3`` backend: namespaces in an S3-compatible object store (AWS S3,
MinIO, Ceph RGW, R2), fenced at the commit point by conditional writes.

Keys under the vPool's prefix ``P``:

* ``P.ns/<namespace>``: the namespace exists (written by create);
* ``P<namespace>/.owner``: the owner record, ``<epoch>:<sha256 of the key>``.
  The token itself never leaves the router; the hash is enough to tell two
  claims of one epoch apart;
* ``P<namespace>/log/<slot>``: log slots, written by put-if-absent
  (``If-None-Match: *``), so a slot is written at most once. A slot holds
  ``C`` or ``R``, the writer's id (a hash of its key) and, for ``R``, the
  record: the id lets a writer whose request outcome is unknown recognise
  its own slot;
* ``P<namespace>/o/<name>``: the objects.

S3 cannot make a write to one object conditional on another, so:

**Claims.** ``claim`` swaps the owner record by compare-and-swap
(``If-Match: <etag>``, or ``If-None-Match: *`` for the first claim): of two
claims of one epoch exactly one swap succeeds; the other re-reads the
record, finds an epoch not lower than its own and is fenced. A 412 on the
owner record is the only 412 looked at again, because it may come from a
concurrent claim of a *lower* epoch, which a higher one must still
overtake; it never rewrites a record it has not just read. The claim then
takes the first free log slot after the last one, by put-if-absent.

**Commits** (``append_log``) are where fencing is exact. A stale writer
commits into consecutive slots after its own last one; the claim took a
slot at or after that, so the stale writer's next put-if-absent finds its
slot taken: 412, ``Fenced``, never retried. Whatever a new owner rebuilds
comes from the slots before its claim slot. One more read closes the last
gap: after the slot is written the owner record is read again and, if it
changed, the commit is reported ``Fenced`` (it may or may not be in the new
owner's state, so the writer must not acknowledge it). Without that read a
writer whose key check passed before a claim, and whose put arrived after
the new owner had trimmed that slot away, would acknowledge a write no one
will ever read.

**Data objects** (``put``) are checked, then written: two requests, not one
atomic step, so a stale writer's put can land after a claim. That is safe
because the engine names data objects after the writer's epoch
(``data/<container>-<epoch>``, ``checkpoint/<slot>`` with a slot below the
new owner's claim slot): a new owner never writes the same name, and it
refers to a stale writer's object only through a committed slot, which the
stale writer can no longer write. Unreferenced, such objects are removed
by the new owner's collector.

**Deletes and trims** by a stale writer are the same check-then-write. A
delete whose check passed before a claim can land after it; what it may
remove was chosen by the stale writer from its own state:

* log slots up to ``upto``, the writer's own last slot: all below the new
  owner's claim slot. The engine writes ``checkpoint/<upto>`` before
  trimming, and the trim's key check comes after that put has completed; so
  either the check preceded the claim, the checkpoint was in place before
  the new owner listed checkpoints and it restores from it (or a later
  one), needing no slot up to ``upto``; or the check is fenced;
* checkpoints older than its own latest: the new owner restores from the
  latest it finds, by the same argument;
* containers the stale writer's collector found unreferenced. The
  collector commits and checkpoints first, so what it finds dead is what
  the committed log it shares with the new owner says is dead. This holds
  as long as the collector decides from committed state only: a write
  that lands in another thread between its checkpoint and its look at the
  map (not yet committed, and never to be, once fenced) could make a
  container look dead that the committed state still needs. That window
  is the engine's, the same on ``local`` for a router that crashes before
  its next flush; on s3 a delete delayed past a claim widens it.

No object name is reused across owners: snapshot maps too are named per
snapshot, with the writer's epoch and a random part
(``snapshot/<name>/<epoch>-<random>``), so a stale writer's put or delete
of a snapshot map delayed beyond a claim cannot touch a snapshot the new
owner made again under the same name.

**Unknown outcomes.** A conditional write that ends in a timeout, a lost
connection or a 5xx may have landed. It is never resent blindly: the slot
or owner record is read back and compared with what was written (the
writer id makes that exact); only if it is absent is the write tried
again. A 409 (``ConditionalRequestConflict``) is handled the same way.

The endpoint must really honour ``If-None-Match`` and ``If-Match`` on
PutObject: :meth:`S3Backend.check_conditional_writes` proves it at
start-up.
"""

import base64
import binascii
import concurrent.futures
import hashlib
import uuid
import zlib

from oslo_log import log as logging

from ovs_daemon.backends import base
from ovs_daemon.backends import crc32
from ovs_daemon.backends import s3_calls

LOG = logging.getLogger(__name__)

_NAMESPACES = '.ns/'
_PROBES = '.probe/'
_OWNER = '.owner'
_LOG = 'log/'
_OBJECTS = 'o/'
_RESERVED_OBJECT_DIR = 'log'
_SLOT_FORMAT = '%016d'
_CLAIM_RECORD = b'C'
_COMMIT_RECORD = b'R'
_WRITER_ID_BYTES = 32
_DELETE_BATCH = 1000
# A claim skips a taken slot only when a write that passed its key check
# before the claim lands first; more than this many means something is
# wrong with the store.
_MAX_CLAIM_SLOTS = 64


class ChecksumMismatch(base.BackendError):
    """What a GET returned does not match the checksum the store sent
    with it."""


class ConditionalWritesUnsupported(base.BackendError):
    """The endpoint accepts writes it should refuse under If-None-Match or
    If-Match: it cannot fence stale writers, so nothing may be served."""


def writer_id(key):
    """A public name for a key: a hash, so the token stays secret."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return digest[:_WRITER_ID_BYTES].encode()


def _check_crc32(what, data, expected, crcs, piece):
    """Raise ChecksumMismatch unless ``data`` (whose pieces' CRCs are
    ``crcs``, if ``piece``) has the CRC-32 ``expected`` (base64, as the
    store sends it), or the store sent none (or one of a multipart
    object's parts: ``<checksum>-<parts>``)."""
    if expected is None or '-' in expected:
        return
    got = crc32.of_whole(crcs, piece, len(data)) if piece else zlib.crc32(data)
    try:
        matches = base64.b64decode(expected, validate=True) == got.to_bytes(4, 'big')
    except binascii.Error:
        matches = False
    if not matches:
        raise ChecksumMismatch('%s: the data read does not match the CRC-32 the store '
                               'sent (%s)' % (what, expected))


class _Owner:
    """The owner record as stored: an epoch and a writer id."""

    def __init__(self, epoch, wid):
        self.epoch, self.wid = epoch, wid

    @classmethod
    def of(cls, key):
        return cls(key.epoch, writer_id(key))

    @classmethod
    def decode(cls, raw):
        epoch, wid = raw.split(b':', 1)
        return cls(int(epoch), wid)

    def encode(self):
        return b'%d:%s' % (self.epoch, self.wid)

    def holds(self, key):
        return self.epoch == key.epoch and self.wid == writer_id(key)


class S3Backend(base.Backend):

    def __init__(self, settings):
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self._client = s3_calls.make_client(settings)
        self._backoff = s3_calls.Backoff(settings)

    def __repr__(self):
        return 'S3Backend(%s, bucket=%r, prefix=%r)' % (
            self.settings.endpoint_url or 'aws', self.bucket, self.prefix)

    # Keys

    def _ns_key(self, namespace, rest=''):
        return '%s%s/%s' % (self.prefix, base.check_name('namespace',
                                                         namespace), rest)

    def _marker_key(self, namespace):
        return self.prefix + _NAMESPACES + base.check_name('namespace',
                                                           namespace)

    def _object_key(self, namespace, name):
        base.check_object_name(name)
        if name.split('/', 1)[0] == _RESERVED_OBJECT_DIR:
            # Reserved on every backend, so that a name is valid everywhere.
            raise base.InvalidName('object names under %r are reserved for '
                                   'the log' % _RESERVED_OBJECT_DIR)
        return self._ns_key(namespace, _OBJECTS + name)

    def _slot_key(self, namespace, slot):
        if not isinstance(slot, int) or isinstance(slot, bool) or slot < 1:
            raise base.InvalidName('log slot must be a positive integer, got '
                                   '%r' % (slot,))
        return self._ns_key(namespace, _LOG + _SLOT_FORMAT % slot)

    # Plain calls (idempotent: retried on transient errors)

    def _call(self, what, operation, **kwargs):
        try:
            return self._backoff.call(what, getattr(self._client, operation),
                                      Bucket=self.bucket, **kwargs)
        except s3_calls.RetriesExhausted:
            raise
        except Exception as exc:
            if s3_calls.classify(exc) == s3_calls.NOT_FOUND:
                raise base.NotFound('%s does not exist' % what) from exc
            raise self._error(what, exc) from exc

    def _error(self, what, exc):
        if isinstance(exc, base.BackendError):
            return exc
        return base.BackendError('%s: %s' % (what, s3_calls.describe(exc)))

    def _read(self, what, key, piece=None, **kwargs):
        """The object's bytes, its ETag and the CRC-32 of each ``piece``
        bytes of them (none without ``piece``). The bytes are checked
        against the CRC-32 the store sent with them, if it sent one (it
        does for whole objects, not for ranges of them). The body is read
        inside the retried call, so a connection lost mid-body is retried
        too."""
        def fetch():
            response = self._client.get_object(Bucket=self.bucket, Key=key,
                                               **kwargs)
            return (response['Body'].read(), response['ETag'],
                    response.get('ChecksumCRC32'))
        try:
            data, etag, expected = self._backoff.call(what, fetch)
        except s3_calls.RetriesExhausted:
            raise
        except Exception as exc:
            kind = s3_calls.classify(exc)
            if kind == s3_calls.NOT_FOUND:
                raise base.NotFound('%s does not exist' % what) from exc
            if kind == s3_calls.OUT_OF_RANGE:
                return b'', None, []  # the caller sees a short read
            raise self._error(what, exc) from exc
        crcs = crc32.of_pieces(data, piece) if piece else []
        _check_crc32(what, data, expected, crcs, piece)
        return data, etag, crcs

    def _read_or_none(self, what, key):
        try:
            return self._read(what, key)[:2]
        except base.NotFound:
            return None, None

    def _keys(self, prefix, start_after=''):
        """Keys under ``prefix`` in order, with their sizes."""
        token = None
        while True:
            kwargs = {'Prefix': prefix}
            if token:
                kwargs['ContinuationToken'] = token
            elif start_after:
                kwargs['StartAfter'] = start_after
            page = self._call('list %s' % prefix, 'list_objects_v2', **kwargs)
            for item in page.get('Contents', ()):
                yield item['Key'], item['Size']
            if not page.get('IsTruncated'):
                return
            token = page['NextContinuationToken']

    def _delete_keys(self, keys):
        keys = list(keys)
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = [{'Key': k} for k in keys[i:i + _DELETE_BATCH]]
            result = self._call('delete %d objects' % len(batch),
                                'delete_objects',
                                Delete={'Objects': batch, 'Quiet': True})
            errors = result.get('Errors') or []
            if errors:
                raise base.BackendError('delete of %s failed: %s'
                                        % (errors[0].get('Key'),
                                           errors[0].get('Code')))

    # Namespaces

    def _require_namespace(self, namespace):
        try:
            self._call('namespace %s' % namespace, 'head_object',
                       Key=self._marker_key(namespace))
        except base.NotFound:
            raise base.NotFound('namespace %s does not exist' % namespace)

    def create_namespace(self, namespace):
        self._call('create namespace %s' % namespace, 'put_object',
                   Key=self._marker_key(namespace), Body=b'')

    def namespace_exists(self, namespace):
        try:
            self._require_namespace(namespace)
        except base.NotFound:
            return False
        return True

    def list_namespaces(self):
        start = self.prefix + _NAMESPACES
        return sorted(key[len(start):] for key, _ in self._keys(start))

    def delete_namespace(self, namespace):
        # The marker first: from then on the namespace does not exist, and
        # a claim or a key check refuses it.
        self._call('delete namespace %s' % namespace, 'delete_object',
                   Key=self._marker_key(namespace))
        self._delete_keys(key for key, _ in
                          self._keys(self._ns_key(namespace)))

    def usage(self):
        used = sum(size for _, size in self._keys(self.prefix))
        return {'capacity_bytes': None, 'free_bytes': None,
                'used_bytes': used}

    # Ownership

    def _read_owner(self, namespace):
        """``(_Owner or None, etag or None)``; NotFound without namespace."""
        raw, etag = self._read_or_none('owner of %s' % namespace,
                                       self._ns_key(namespace, _OWNER))
        if raw is None:
            self._require_namespace(namespace)
            return None, None
        return _Owner.decode(raw), etag

    def _check_key(self, namespace, key):
        if not isinstance(key, base.OwnerKey):
            raise base.InvalidName('a write needs an OwnerKey, got %r'
                                   % (key,))
        current, _ = self._read_owner(namespace)
        if current is None or not current.holds(key):
            raise base.Fenced('namespace %s: key of epoch %d is not current '
                              '(current epoch %s)'
                              % (namespace, key.epoch,
                                 current.epoch if current else 'none'))

    def current_epoch(self, namespace):
        current, _ = self._read_owner(namespace)
        return current.epoch if current else 0

    def claim(self, namespace, new_key):
        if not isinstance(new_key, base.OwnerKey):
            raise base.InvalidName('claim needs an OwnerKey, got %r'
                                   % (new_key,))
        self._swap_owner(namespace, new_key)
        slot = self._take_claim_slot(namespace, new_key)
        LOG.info('namespace %s claimed with epoch %d at log slot %d',
                 namespace, new_key.epoch, slot)
        return slot

    def _swap_owner(self, namespace, new_key):
        """Compare-and-swap the owner record to ``new_key``."""
        mine = _Owner.of(new_key)
        key = self._ns_key(namespace, _OWNER)
        last = None
        for _ in self._backoff.attempts():
            current, etag = self._read_owner(namespace)
            if last is not None and current is not None \
                    and current.holds(new_key):
                return  # an earlier attempt whose answer was lost landed
            if current is not None and new_key.epoch <= current.epoch:
                raise base.Fenced('namespace %s: claim of epoch %d refused, '
                                  'epoch %d is current'
                                  % (namespace, new_key.epoch, current.epoch))
            condition = {'IfMatch': etag} if etag else {'IfNoneMatch': '*'}
            try:
                self._client.put_object(Bucket=self.bucket, Key=key,
                                        Body=mine.encode(), **condition)
                return
            except Exception as exc:
                kind = s3_calls.classify(exc)
                if kind not in (s3_calls.PRECONDITION, s3_calls.CONFLICT,
                                s3_calls.TRANSIENT, s3_calls.NOT_FOUND):
                    raise self._error('claim of %s' % namespace, exc) from exc
                # Changed under us, a conflict, or an unknown outcome: the
                # next round reads what is there and decides.
                last = exc
        raise s3_calls.RetriesExhausted('claim of %s: %s' % (
            namespace, s3_calls.describe(last)))

    def _take_claim_slot(self, namespace, new_key):
        record = _CLAIM_RECORD + writer_id(new_key)
        slot = self._last_slot(namespace) + 1
        for _ in range(_MAX_CLAIM_SLOTS):
            # A claim of a higher epoch may have overtaken this one: then
            # taking a slot would only get in its owner's way.
            self._check_key(namespace, new_key)
            if self._put_slot(namespace, slot, record):
                return slot
            slot += 1
        raise base.BackendError('namespace %s: %d log slots taken while '
                                'claiming' % (namespace, _MAX_CLAIM_SLOTS))

    def _last_slot(self, namespace):
        prefix = self._ns_key(namespace, _LOG)
        last = 0
        for key, _ in self._keys(prefix):
            last = max(last, int(key[len(prefix):]))
        return last

    # Log slots

    def _put_slot(self, namespace, slot, record):
        """Put-if-absent of ``record`` into ``slot``. True when the slot
        holds this record, False when it holds another."""
        key = self._slot_key(namespace, slot)
        uncertain = False
        last = None
        for _ in self._backoff.attempts():
            try:
                self._client.put_object(Bucket=self.bucket, Key=key,
                                        Body=record, IfNoneMatch='*')
                return True
            except Exception as exc:
                kind = s3_calls.classify(exc)
                if kind == s3_calls.PRECONDITION and not uncertain:
                    return False  # taken by another writer: never retried
                if kind not in (s3_calls.PRECONDITION, s3_calls.CONFLICT,
                                s3_calls.TRANSIENT):
                    raise self._error('log slot %d of %s' % (slot, namespace),
                                      exc) from exc
                last = exc
            # A 409, or an earlier attempt that may have landed: only what
            # the slot holds now tells.
            uncertain = True
            held = self._slot_content(key)
            if held is not None:
                return held == record
        raise s3_calls.RetriesExhausted('log slot %d of %s: %s' % (
            slot, namespace, s3_calls.describe(last)))

    def _slot_content(self, key):
        try:
            return self._read('log slot %s' % key, key)[0]
        except base.NotFound:
            return None

    def append_log(self, namespace, slot, data, key):
        self._slot_key(namespace, slot)
        self._check_key(namespace, key)
        record = _COMMIT_RECORD + writer_id(key) + bytes(data)
        if not self._put_slot(namespace, slot, record):
            raise base.Fenced('namespace %s: log slot %d is taken'
                              % (namespace, slot))
        try:
            self._check_key(namespace, key)
        except base.Fenced as exc:
            raise base.Fenced('namespace %s: claimed by another writer while '
                              'slot %d was committed; the new owner may not '
                              'have it (%s)' % (namespace, slot, exc)) from exc

    def read_log(self, namespace, after=0):
        self._require_namespace(namespace)
        prefix = self._ns_key(namespace, _LOG)
        start = prefix + _SLOT_FORMAT % after if after > 0 else ''
        for key, _ in self._keys(prefix, start_after=start):
            slot = int(key[len(prefix):])
            raw = self._slot_content(key)
            if raw is None:
                continue  # trimmed by the owner while we were reading
            kind, body = raw[:1], raw[1 + _WRITER_ID_BYTES:]
            if kind == _CLAIM_RECORD:
                yield slot, None
            elif kind == _COMMIT_RECORD:
                yield slot, body
            else:
                raise base.BackendError('%s: log slot %d is corrupt'
                                        % (namespace, slot))

    def trim_log(self, namespace, upto, key):
        self._check_key(namespace, key)
        prefix = self._ns_key(namespace, _LOG)
        slots = {int(k[len(prefix):]): k for k, _ in self._keys(prefix)}
        last = max(slots, default=0)
        self._delete_keys(k for slot, k in sorted(slots.items())
                          if slot <= upto and slot != last)

    # Objects

    def put(self, namespace, name, data, key, durable=True):
        # A PUT S3 acknowledged is durable: ``durable`` changes nothing here.
        object_key = self._object_key(namespace, name)
        self._check_key(namespace, key)
        data = bytes(data)
        if len(data) >= self.settings.multipart_threshold:
            self._put_multipart(object_key, data)
        else:
            self._call('put %s/%s' % (namespace, name), 'put_object',
                       Key=object_key, Body=data)

    def _put_multipart(self, key, data):
        """Upload ``data`` in parts; nothing is visible until complete."""
        upload = self._call('multipart upload of %s' % key,
                            'create_multipart_upload', Key=key)['UploadId']
        chunk = self.settings.multipart_chunk
        try:
            offsets = range(0, len(data), chunk)
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                etags = list(pool.map(
                    lambda i: self._call(
                        'part %d of %s' % (i + 1, key), 'upload_part',
                        Key=key, UploadId=upload, PartNumber=i + 1,
                        Body=data[offsets[i]:offsets[i] + chunk])['ETag'],
                    range(len(offsets))))
            parts = [{'ETag': etag, 'PartNumber': n + 1}
                     for n, etag in enumerate(etags)]
            self._complete_multipart(key, upload, parts, len(data))
        except BaseException:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload)
            except Exception as exc:
                LOG.warning('abort of multipart upload of %s failed: %s '
                            '(the bucket lifecycle removes it)', key,
                            s3_calls.describe(exc))
            raise

    def _complete_multipart(self, key, upload, parts, size):
        try:
            self._call('complete %s' % key, 'complete_multipart_upload',
                       Key=key, UploadId=upload,
                       MultipartUpload={'Parts': parts})
        except base.NotFound:
            # NoSuchUpload on a retry: the first attempt completed it.
            head = self._call('head %s' % key, 'head_object', Key=key)
            if head['ContentLength'] != size:
                raise

    def get(self, namespace, name, offset=0, length=None):
        return self.get_with_crc32s(namespace, name, offset, length, None)[0]

    def get_with_crc32s(self, namespace, name, offset, length, piece):
        """Summed once: the pieces' CRCs are what the store's checksum
        of a whole object is checked against."""
        object_key = self._object_key(namespace, name)
        what = '%s/%s' % (namespace, name)
        if length is None:
            data, _, crcs = self._read(what, object_key, piece)
            return data, crcs
        if length == 0:
            self._call(what, 'head_object', Key=object_key)
            return b'', []
        data, _, crcs = self._read(what, object_key, piece, Range='bytes=%d-%d'
                                   % (offset, offset + length - 1))
        if len(data) != length:
            raise base.BackendError('%s: short read of %d bytes at %d'
                                    % (what, length, offset))
        return data, crcs

    def list(self, namespace, prefix=''):
        self._require_namespace(namespace)
        start = self._ns_key(namespace, _OBJECTS)
        return sorted(key[len(start):]
                      for key, _ in self._keys(start + prefix))

    def delete(self, namespace, name, key):
        object_key = self._object_key(namespace, name)
        self._check_key(namespace, key)
        self._call('delete %s/%s' % (namespace, name), 'delete_object',
                   Key=object_key)

    # Start-up

    def check_conditional_writes(self):
        """Prove that the endpoint refuses what fencing relies on it to
        refuse: a second put-if-absent of one key, and an If-Match put with
        a wrong ETag. Raises ConditionalWritesUnsupported otherwise."""
        key = self.prefix + _PROBES + uuid.uuid4().hex
        self._call('probe %s' % key, 'put_object', Key=key, Body=b'first',
                   IfNoneMatch='*')
        try:
            for header, value in (('IfNoneMatch', '*'),
                                  ('IfMatch', '"%s"' % ('0' * 32))):
                self._refused(key, header, value)
            if self._read('probe %s' % key, key)[0] != b'first':
                raise self._unsupported(key, 'its content was replaced')
        finally:
            self._call('probe %s' % key, 'delete_object', Key=key)

    def _refused(self, key, header, value):
        try:
            self._client.put_object(Bucket=self.bucket, Key=key,
                                    Body=b'second', **{header: value})
        except Exception as exc:
            if s3_calls.classify(exc) == s3_calls.PRECONDITION:
                return
            raise self._error('conditional write probe (%s)' % header,
                              exc) from exc
        raise self._unsupported(key, 'a put with %s: %s succeeded'
                                % (header, value))

    def _unsupported(self, key, what):
        return ConditionalWritesUnsupported(
            'S3 endpoint %s, bucket %s does not honour conditional writes: '
            'on probe object %s %s. Fencing of stale owners depends on '
            'If-None-Match and If-Match on PutObject; refusing to serve. '
            'Use a store that supports them (AWS S3, MinIO, Ceph RGW, R2 '
            'of late 2024 or newer).'
            % (self.settings.endpoint_url or 'aws', self.bucket, key, what))
