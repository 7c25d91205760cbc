# Cython declarations for volume.py, applied when it is compiled
# (tools/build_extensions.py): the volume's state as typed fields, its
# request path as C calls. The .py stays the one source and runs as Python
# without them.

cimport cython

from ovs_daemon.engine cimport blockmap
from ovs_daemon.engine.blockmap cimport BlockMap


cdef class Volume:
    cdef public object backend
    cdef public object cache
    cdef public dict _incarnations
    cdef public object _read_end
    cdef public object _near_reads
    cdef public object _prefetched_end
    cdef public object namespace
    cdef public object key
    cdef public object tuning
    cdef public object size
    cdef public BlockMap map
    cdef public dict snapshots
    cdef public object parent
    cdef public list _ancestors
    cdef public dict _containers
    cdef public dict _buffers
    cdef public object _open_container
    cdef public object _next_container
    cdef public list _ops
    cdef public object _next_slot
    cdef public object _checkpoint_slot
    cdef public dict _reverted_from
    cdef public object _records_since_checkpoint
    cdef public object _bytes_since_checkpoint
    cdef public object _checkpoint_failed
    cdef public object _halted
    cdef public object _lock
    cdef public object _flush_lock
    cdef public object _write_behind
    cdef public object _checkpoint_lock
    cdef object __weakref__

    cpdef _check_live(self)
    cpdef _check_range(self, offset, length)
    cpdef read(self, offset, length, wait=*)
    cpdef _locate(self, Py_ssize_t block)

    @cython.locals(block=Py_ssize_t, end=Py_ssize_t, index=Py_ssize_t)
    cpdef _plan_read(self, Py_ssize_t first, Py_ssize_t count)

    cpdef _fetch(self, piece)
    cpdef _fetch_at_once(self, piece)
    cpdef write(self, offset, data)

    @cython.locals(count=Py_ssize_t, done=Py_ssize_t, index=Py_ssize_t, room=Py_ssize_t,
                   run=Py_ssize_t)
    cpdef _write_blocks(self, Py_ssize_t block, data)

    cpdef _open_buffer(self)
    cpdef _record_write(self, block, count, first_loc)
    cpdef _unflushed_bytes(self)


cpdef _blocks(nbytes)
