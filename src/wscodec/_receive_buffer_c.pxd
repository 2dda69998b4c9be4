cdef class ReceiveBuffer:
    cdef object _small
    cdef Py_ssize_t _small_reads
    cdef public object view

    cpdef filled(self, Py_ssize_t count)
