# C-level declarations of the compiled codec, for other .pyx modules to cimport.
from libc.stdint cimport uint8_t, uint64_t


cdef void mask_copy(uint8_t* dst, const uint8_t* src, Py_ssize_t length,
                    const uint8_t* key, Py_ssize_t phase) noexcept nogil
cdef uint8_t utf8_run(uint8_t state, const uint8_t* data, Py_ssize_t length) noexcept nogil


cdef class Utf8Validator:
    cdef uint8_t _state
    cdef int _busy                    # set while a method runs (busy.h)


cdef class FrameParser:
    cdef readonly bint mask_expected
    cdef Py_ssize_t _limit            # -1: no limit
    cdef int _allowed_rsv
    # The header being received: its bytes, how many have arrived, and how
    # many it has in all (0 until the second byte tells).
    cdef uint8_t _header[14]
    cdef Py_ssize_t _header_have
    cdef Py_ssize_t _header_size
    # The payload being received.
    cdef bint _in_payload
    cdef uint8_t _first
    cdef uint8_t _key[4]
    cdef bint _masked
    cdef Py_ssize_t _length
    cdef Py_ssize_t _filled
    cdef object _payload              # bytes filled in place, or a list of chunks
    cdef object _error
    cdef int _busy                    # set while a method runs (busy.h)

    cpdef object whole_message(self, data)
    cdef object _whole_message(self, const uint8_t* data, Py_ssize_t size)
    cpdef list feed(self, data)
    cdef list _feed(self, object data)
    cdef object _pending_payload(self, Py_ssize_t start)
    cdef int _parse(self, const uint8_t* data, Py_ssize_t size, list frames) except -1
    cdef int _check_header(self, const uint8_t* h, Py_ssize_t have) except -1
    cdef int _start_payload(self, const uint8_t* h) except -1
    cdef object _finish_frame(self, object payload)
