# Cython declarations for gate.py, applied when it is compiled
# (tools/build_extensions.py); the .py stays the one source and runs as
# Python without them.

cdef class IOGate:
    cdef object _parent
    cdef object _open
    cdef public object closed_reason
