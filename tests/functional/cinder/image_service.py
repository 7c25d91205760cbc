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

"""An in-memory image service with the calls cinder's API and volume
manager make of glance's (show, create, download, update, locations).
Glance does not run here; this keeps image data and metadata in memory."""

import copy
import uuid

from cinder import exception


class MemoryImageService:
    def __init__(self):
        self.images = {}
        self.data = {}
        self.temp_images = None   # cinder caches downloads here, as for glance

    def add(self, path, disk_format):
        """Register the file at ``path`` as an active image; returns its id."""
        with open(path, 'rb') as f:
            data = f.read()
        image = self.create(None, {'status': 'active', 'disk_format': disk_format,
                                   'container_format': 'bare', 'size': len(data)})
        self.data[image['id']] = data
        return image['id']

    def create(self, context, metadata, data=None):
        image_id = str(metadata.get('id') or uuid.uuid4())
        image = dict({'status': 'queued', 'properties': {}, 'min_disk': 0, 'min_ram': 0,
                      'visibility': 'private', 'protected': False},
                     **metadata, id=image_id)
        self.images[image_id] = image
        if data is not None:
            self._store(image_id, data)
        return copy.deepcopy(image)

    def show(self, context, image_id):
        try:
            return copy.deepcopy(self.images[image_id])
        except KeyError:
            raise exception.ImageNotFound(image_id=image_id) from None

    def download(self, context, image_id, data=None):
        self.show(context, image_id)
        if data is None:
            return [self.data[image_id]]
        data.write(self.data[image_id])

    def update(self, context, image_id, metadata, data=None, purge_props=False,
               store_id=None, base_image_ref=None):
        image = self.images[image_id]
        image['properties'].update(metadata.pop('properties', {}))
        image.update(metadata)
        if data is not None:
            self._store(image_id, data)
        return copy.deepcopy(image)

    def _store(self, image_id, data):
        self.data[image_id] = data.read() if hasattr(data, 'read') else b''.join(data)
        self.images[image_id].update(status='active', size=len(self.data[image_id]))

    def delete(self, context, image_id):
        self.images.pop(image_id, None)
        self.data.pop(image_id, None)

    def get_location(self, context, image_id):
        return None, None

    def add_location(self, context, image_id, url, metadata):
        return True
