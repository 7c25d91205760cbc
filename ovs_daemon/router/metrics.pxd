# Cython declarations for metrics.py, applied when it is compiled
# (tools/build_extensions.py); the .py stays the one source and runs as
# Python without them.

cdef class _IOStats:
    cdef public long long requests
    cdef public long long errors
    cdef public long long bytes
    cdef public long long backend_errors
    cdef public double latency_sum
    cdef public list buckets

    cpdef count(self, double seconds, long long nbytes, error)
