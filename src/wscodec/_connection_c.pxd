from wscodec._codec cimport FrameParser

cdef class Connection:
    cdef object __weakref__
    cdef public object _codec
    cdef public bint _compressed
    cdef public object _decoder
    cdef public Py_ssize_t _fragment_count
    cdef public list _fragments
    cdef public object _held
    cdef public object _held_error
    cdef public Py_ssize_t _held_start
    cdef public Py_ssize_t _inflated
    cdef public Py_ssize_t _mask_position
    cdef public object _masks
    cdef public object _message_opcode
    cdef public Py_ssize_t _message_size
    cdef public list _outgoing
    cdef public FrameParser _parser
    cdef public object _pending_close
    cdef public bint _scattered
    cdef public object _sending
    cdef public bint _streaming
    cdef public object _utf8
    cdef public Py_ssize_t _validated
    cdef public object auto_pong
    cdef public object close_received
    cdef public object close_sent
    cdef public object deflate
    cdef public bint eof_received
    cdef public object failure
    cdef public object fragment_size
    cdef public object max_fragments
    cdef public object max_message_size
    cdef public bint plain_messages
    cdef public object role
    cdef public object state
    cdef public object stream_fragments

    cpdef list receive_data(self, data)
    cpdef _receive_frame(self, frame, list events)
    cpdef _add_fragment(self, payload, final, validated=*)
    cpdef _finish_message(self)
    cpdef list buffers_to_send(self)
    cpdef message_frame(self, data)
    cpdef has_data_to_send(self)
    cpdef _send_data(self, opcode, payload, fin)
    cpdef _check_open(self)
