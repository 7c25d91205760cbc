# Compiled, FramedConnection's state is C fields and its per-request steps
# are C calls; connection.py stays the one source (see ovs_daemon/compiled.py).

cimport cython


cdef class _Framing:
    cdef public object transport
    cdef public object _loop
    cdef bytearray _buf
    cdef object _view
    cdef Py_ssize_t _start
    cdef Py_ssize_t _end
    cdef bint _framing
    cdef bint _receiving_paused
    cdef bint _receiving_stopped
    cdef object _waiter
    cdef public bint _lost
    cdef bytearray _payload
    cdef object _payload_view
    cdef Py_ssize_t _payload_pos
    cdef object _payload_callback
    cdef bint _receiving_direct
    cdef list _out
    cdef bint _send_scheduled

    cdef _received(self, Py_ssize_t nbytes)
    cpdef expect_payload(self, Py_ssize_t length, callback)
    cpdef header_received(self, buf, Py_ssize_t pos)
    cpdef stop_receiving(self)
    cpdef pause_receiving(self)
    cpdef resume_receiving(self)
    @cython.locals(size=Py_ssize_t, pos=Py_ssize_t)
    cdef _parse(self)
    @cython.locals(take=Py_ssize_t)
    cdef bint _fill_payload(self) except -1
    cdef _complete_payload(self)
    cpdef _flush_sends(self)


cdef class FramedConnection(_Framing):
    pass
