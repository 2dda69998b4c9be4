cdef class MessageQueue:
    cdef public bint _discarding
    cdef public Py_ssize_t _finals
    cdef public list _items
    cdef public object _loop
    cdef public object _pause
    cdef public bint _reading
    cdef public object _resume
    cdef public bint _skipping
    cdef public object _waiter
    cdef public bint closed
    cdef public Py_ssize_t high
    cdef public Py_ssize_t low
    cdef public bint paused

    cpdef put(self, item)
    cpdef take(self)
    cpdef wait(self)
    cpdef ready(self)
