from wscodec._connection_c cimport Connection as _CompiledConnection
from wscodec._receive_buffer_c cimport ReceiveBuffer as _CompiledBuffer
from wscodec.asyncio._messages_c cimport MessageQueue as _CompiledQueue

cdef class _ProtocolBase:
    pass

cdef class AsyncConnection(_ProtocolBase):
    cdef object __weakref__
    cdef public _CompiledBuffer _buffer
    cdef public bint _close_held
    cdef public bint _closing_started
    cdef public list _drain_waiters
    cdef public object _fragmenting
    cdef public Py_ssize_t _high
    cdef public object _id
    cdef public bint _join_writes
    cdef public object _keepalive_waiter
    cdef public object _loop
    cdef public object _lost
    cdef public Py_ssize_t _low
    cdef public _CompiledQueue _messages
    cdef public object _pings
    cdef public bint _reading_paused
    cdef public object _timer
    cdef public bint _write_shut
    cdef public bint _writing_paused
    cdef public object close_timeout
    cdef public object latency
    cdef public object local_address
    cdef public object logger
    cdef public object ping_interval
    cdef public object ping_timeout
    cdef public _CompiledConnection protocol
    cdef public object remote_address
    cdef public object request
    cdef public object response
    cdef public object subprotocol
    cdef public object transport
    cdef public object write_limit
    cdef public object write_timeout

    cpdef get_buffer(self, sizehint)
    cpdef buffer_updated(self, nbytes)
    cpdef _receive(self, data)
    cpdef _flush(self)
    cpdef bint _write_message(self, message)
