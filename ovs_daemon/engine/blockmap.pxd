# Cython declarations for blockmap.py, applied when it is compiled
# (tools/build_extensions.py); the .py stays the one source and runs as
# Python without them.

cimport cython

cdef class _SparsePage:
    cdef public object offsets
    cdef public object values


cdef class BlockMap:
    cdef public dict _pages
    cdef public set _owned

    cpdef get(self, Py_ssize_t block)

    @cython.locals(count=Py_ssize_t, start=Py_ssize_t, n=Py_ssize_t, run=Py_ssize_t)
    cpdef consecutive(self, Py_ssize_t block, loc, Py_ssize_t limit)

    cpdef _writable_page(self, Py_ssize_t page_no, Py_ssize_t adding)

    @cython.locals(page_no=Py_ssize_t, start=Py_ssize_t, n=Py_ssize_t)
    cpdef set_run(self, Py_ssize_t block, Py_ssize_t count, first_location)


cpdef location(container, index)
cpdef container_of(loc)
cpdef index_of(loc)
