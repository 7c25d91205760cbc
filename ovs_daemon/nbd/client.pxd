# Compiled, a client connection's state is C fields and its per-reply steps
# are C calls; client.py stays the one source (see ovs_daemon/compiled.py).

cimport cython

from ovs_daemon.nbd cimport connection


cdef class _ClientConnection(connection.FramedConnection):
    cdef public object size
    cdef public object transmission_flags
    cdef public tuple block_sizes
    cdef public dict pending
    cdef object _handles
    cdef object _lost_waiter

    cpdef request(self, command, offset, length, flags=*, payload=*, callback=*)
    @cython.locals(entry=tuple)
    cpdef header_received(self, buf, Py_ssize_t pos)
    cpdef _read_done(self, handle, data)
