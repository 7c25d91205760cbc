# Compiled, a ServerSession's state is C fields and its per-request steps
# are C calls; session.py stays the one source (see ovs_daemon/compiled.py).

cimport cython

from ovs_daemon.nbd cimport connection


cdef class ServerSession(connection.FramedConnection):
    cdef object _tls
    cdef object _ready
    cdef public object export
    cdef public object peer
    cdef object _resolver
    cdef object _on_closed
    cdef public object _admission
    cdef object _handshake
    cdef object _barrier
    cdef object _idle
    cdef readonly Py_ssize_t _requests_in_flight
    cdef Py_ssize_t _bytes_in_flight
    cdef bint _writing_paused
    cdef bint _closing
    cdef object _teardown

    @cython.locals(flags=int, command=int)
    cpdef header_received(self, buf, Py_ssize_t pos)
    cdef _drop(self)
    @cython.locals(cost=Py_ssize_t)
    cpdef _submit(self, int command, int flags, handle, offset, length, payload)
    cdef bint _serve_now(self, int command, int flags, handle, offset, length, payload,
                         Py_ssize_t cost) except -1
    cdef _request_done(self, Py_ssize_t cost)
    cpdef _served(self, handle, int command, length, Py_ssize_t cost, error, data)
    cdef int _validate(self, int command, int flags, offset, length) except -1
    cdef _apply_backpressure(self)
