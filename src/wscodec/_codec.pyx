# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, freethreading_compatible=True
# cython: binding=False, embedsignature=True, embedsignature.format=clinic
# binding=False: functions and methods are plain builtins, ~90 instructions a
# call cheaper than Cython function objects (benchmarks.instructions: 16-byte
# validate_utf8 903 -> 815); the embedded signatures keep inspect and help() working.
"""The compiled codec: masking, UTF-8 validation, frame parsing and encoding.

Twin of ``wscodec/codec.py``: the same names, results and exceptions, checked
by the differential tests. The rules and error texts come from
``wscodec.protocol``; only their fast implementation lives here. Kernels run
without the GIL on inputs of ``NOGIL_THRESHOLDS`` bytes and more, so other
threads keep working while a large payload is unmasked or validated.

Free-threaded builds (3.13t, 3.14t; ``freethreading_compatible`` above): a
caller's mutable buffer is read and written only through a buffer export held
for the whole call, at every size, so that no other thread can resize or free
it meanwhile (it gets BufferError instead); bytes, immutable, are read
directly. :class:`FrameParser` and :class:`Utf8Validator` serve one call at a
time: a second call while one is in progress, from another thread or from a
callback, raises RuntimeError (busy.h) instead of corrupting their state.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.number cimport PyNumber_Index
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy

import sys

from wscodec.exceptions import PayloadTooBig, ProtocolError
from wscodec.protocol import (
    MAX_CONTROL_PAYLOAD,
    OPCODE_BY_VALUE,
    RSV1,
    RSV2,
    RSV3,
    CloseCode,
    Errors,
    Frame,
    parse_close_payload,
)

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX
    # Declared here without Cython's error check: _plain_offset() clears it.
    Py_ssize_t _long_as_ssize "PyLong_AsSsize_t"(object value)
    void PyErr_Clear()

# The SIMD kernels live in small C headers (intrinsics read better in C); each
# header has a portable path and picks its widest path at run time.
cdef extern from "wscodec/cpu_features.h":
    int ws_detect_level() noexcept nogil
    int ws_cpu_has(const char* name) noexcept nogil
    const char* ws_level_names[]

cdef extern from "wscodec/simd_mask.h":
    void ws_mask(uint8_t* dst, const uint8_t* src, size_t n, const uint8_t* key,
                 size_t phase) noexcept nogil
    const char* ws_mask_select(int level) noexcept nogil
    size_t ws_mask_streaming_from

cdef extern from "wscodec/frame_alloc.h":
    object ws_make_frame(object type, object opcode, object payload, bint fin,
                         bint rsv1, bint rsv2, bint rsv3)

cdef extern from "wscodec/busy.h":
    bint ws_enter(int* busy) noexcept nogil
    void ws_leave(int* busy) noexcept nogil

cdef extern from "wscodec/simd_utf8.h":
    ctypedef Py_ssize_t (*ws_utf8_fn)(const uint8_t* s, size_t n) noexcept nogil
    ws_utf8_fn ws_utf8_impl
    const char* ws_utf8_select(int level) noexcept nogil

cdef int _SIMD_LEVEL = ws_detect_level()
_LEVEL_NAMES = [(<bytes>ws_level_names[_n]).decode() for _n in range(5)]
#: The instruction-set levels this CPU (and WSCODEC_SIMD, if set) allows, best
#: last: the portable path, then each x86_64 level up to the best, or NEON.
SIMD_LEVELS = tuple(
    [_LEVEL_NAMES[0]]
    + [_LEVEL_NAMES[_n] for _n in range(1, _SIMD_LEVEL + 1) if _SIMD_LEVEL < 4 or _n == 4]
)
#: The kernel each operation uses, e.g. {"mask": "avx512", "utf8": "avx512"}.
KERNELS = {}


def _use_simd(level=None):
    """Pick the kernels for ``level`` (a name in SIMD_LEVELS; None: the best).

    For tests and benchmarks, which run every path this CPU has. Not thread
    safe: call it while no other thread is in the codec. Returns KERNELS.
    """
    name = SIMD_LEVELS[len(SIMD_LEVELS) - 1] if level is None else level
    if name not in SIMD_LEVELS:
        raise ValueError(f"SIMD level {name!r} is not available here: {SIMD_LEVELS}")
    number = _LEVEL_NAMES.index(name)
    KERNELS["mask"] = ws_mask_select(number).decode()
    KERNELS["utf8"] = ws_utf8_select(number).decode()
    return KERNELS


_use_simd()
#: From this many bytes on, copying AVX2 masking bypasses the caches with
#: non-temporal stores (3/8 of the L3 cache the CPU reports).
MASK_STREAMING_FROM = ws_mask_streaming_from


def cpu_features():
    """The SIMD features of this CPU that the kernels can use (name -> bool)."""
    names = ("sse2", "ssse3", "avx2", "avx512f", "avx512bw", "neon")
    return {name: bool(ws_cpu_has(name.encode())) for name in names}

# Releasing and re-taking the GIL costs ~30 ns when no other thread wants it,
# but when another thread is busy the caller waits for it to hand the GIL
# back: up to the switch interval (5 ms). benchmarks/nogil.py measures both.
# So a kernel gives the GIL up only once it runs for ~20 us: short enough that
# holding it delays other threads by well under 1% of a switch interval, long
# enough that the uncontended cost is under 0.2%. Figures in benchmarks/README.md.
cdef Py_ssize_t _NOGIL_MASK = 1048576   # masking/copying ~50 GB/s: 1 MiB ~ 20 us
cdef Py_ssize_t _NOGIL_UTF8 = 262144    # validation ~15 GB/s non-ASCII: 256 KiB ~ 17 us
#: Inputs of at least this many bytes are processed with the GIL released.
NOGIL_THRESHOLDS = {"mask": _NOGIL_MASK, "utf8": _NOGIL_UTF8}
#: The masking threshold (the first one this module exposed).
NOGIL_THRESHOLD = _NOGIL_MASK


def _set_nogil_thresholds(mask=None, utf8=None):
    """Change the thresholds (for benchmarks/nogil.py); returns the old ones."""
    global _NOGIL_MASK, _NOGIL_UTF8, NOGIL_THRESHOLD
    old = dict(NOGIL_THRESHOLDS)
    if mask is not None:
        _NOGIL_MASK = mask
    if utf8 is not None:
        _NOGIL_UTF8 = utf8
    NOGIL_THRESHOLDS.update(mask=_NOGIL_MASK, utf8=_NOGIL_UTF8)
    NOGIL_THRESHOLD = _NOGIL_MASK
    return old

# A payload whose frame header arrives before the payload is allocated at its
# full size up front when the size is bounded by the limit; with no limit, only
# up to this size (beyond it, chunks are collected and joined at the end).
cdef Py_ssize_t _UNBOUNDED_PREALLOC = 2**20
# Even under a limit, never more than this on the word of a header alone: a
# huge limit must not let a 14-byte header fail the allocation (MemoryError,
# found by tests/fuzz) or reserve gigabytes before any payload arrives.
cdef Py_ssize_t _BOUNDED_PREALLOC = 2**26

cdef int _ALL_RSV = RSV1 | RSV2 | RSV3
cdef int _PROTOCOL_ERROR = CloseCode.PROTOCOL_ERROR
cdef Py_ssize_t _MAX_CONTROL = MAX_CONTROL_PAYLOAD
cdef bint _VALID_OPCODE[16]
for _n in range(16):
    _VALID_OPCODE[_n] = OPCODE_BY_VALUE[_n] is not None
cdef tuple _OPCODES = tuple(OPCODE_BY_VALUE)
# Module globals are dict look-ups in Cython: keep per-frame constants in C.
cdef int _RSV1 = RSV1, _RSV2 = RSV2, _RSV3 = RSV3
cdef object _FRAME = Frame
if not (issubclass(Frame, tuple) and len(Frame._fields) == 6 and Frame.__itemsize__ == tuple.__itemsize__):
    raise ImportError("wscodec.protocol.Frame must be a 6-field NamedTuple")


# Buffers ----------------------------------------------------------------------

cdef inline int _get_buffer(object data, Py_buffer* view, int flags) except -1:
    """Borrow ``data``'s bytes; TypeError with the shared message if impossible."""
    try:
        PyObject_GetBuffer(data, view, flags)
    except (TypeError, BufferError):
        message = Errors.NOT_WRITABLE if flags & PyBUF_WRITABLE else Errors.NOT_BYTES_LIKE
        raise TypeError(message.format(type=type(data).__name__)) from None
    return 0


cdef inline int _read_view(object data, Py_buffer* view) except -1:
    """Point ``view`` at ``data``'s bytes: 1 if a buffer was borrowed (release
    it), 0 for ``bytes``, read directly (immutable, and referenced by the
    caller throughout, even where the GIL is released)."""
    if type(data) is bytes:
        view.buf = PyBytes_AS_STRING(data)
        view.len = PyBytes_GET_SIZE(data)
        return 0
    _get_buffer(data, view, PyBUF_SIMPLE)
    return 1


cdef inline int _get_key(object mask, uint8_t* key) except -1:
    cdef Py_buffer view
    _get_buffer(mask, &view, PyBUF_SIMPLE)
    try:
        if view.len != 4:
            raise ValueError(Errors.BAD_MASK)
        memcpy(key, view.buf, 4)
    finally:
        PyBuffer_Release(&view)
    return 0


# Masking ----------------------------------------------------------------------

cdef void mask_copy(uint8_t* dst, const uint8_t* src, Py_ssize_t length,
                    const uint8_t* key, Py_ssize_t phase) noexcept nogil:
    """``dst[i] = src[i] ^ key[(phase + i) % 4]``; ``dst`` may be ``src``.

    The work is done by the widest kernel of simd_mask.h this CPU runs
    (chosen once, at import).
    """
    ws_mask(dst, src, <size_t>length, key, <size_t>phase)


cdef inline void _mask_copy_maybe_nogil(uint8_t* dst, const uint8_t* src, Py_ssize_t length,
                                        const uint8_t* key, Py_ssize_t phase) noexcept:
    if length >= _NOGIL_MASK:
        with nogil:
            mask_copy(dst, src, length, key, phase)
    else:
        mask_copy(dst, src, length, key, phase)


# The common arguments, bytes data and a 4-byte bytes key, are read directly:
# borrowing buffers costs more than masking 16 bytes. Whatever else comes takes
# the general path, which checks it and raises the shared errors.

cdef inline bint _plain_key(object mask, uint8_t* key) noexcept:
    """Copy a 4-byte ``bytes`` mask into ``key``; False for any other mask."""
    if type(mask) is bytes and PyBytes_GET_SIZE(mask) == 4:
        memcpy(key, PyBytes_AS_STRING(mask), 4)
        return True
    return False


cdef inline Py_ssize_t _plain_offset(object offset) noexcept:
    """``offset`` if it is an ``int`` from 0 to PY_SSIZE_T_MAX, else a negative number."""
    cdef Py_ssize_t value
    if type(offset) is not int:
        return -1
    value = _long_as_ssize(offset)
    if value == -1:
        PyErr_Clear()  # too large: the general path does the arithmetic
    return value


def apply_mask(data, mask):
    """Return ``data`` XOR-ed with the 4-byte ``mask`` repeated.

    Masking is its own inverse: the same call masks and unmasks. Raises
    :class:`ValueError` if ``mask`` is not exactly 4 bytes and
    :class:`TypeError` if either argument is not bytes-like.
    """
    cdef Py_buffer view
    cdef uint8_t key[4]
    cdef bytes result
    if type(data) is bytes and _plain_key(mask, key):
        # bytes cannot change, not even while the GIL is released: no buffer needed.
        result = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(data))
        _mask_copy_maybe_nogil(<uint8_t*>PyBytes_AS_STRING(result),
                               <const uint8_t*>PyBytes_AS_STRING(data),
                               PyBytes_GET_SIZE(data), key, 0)
        return result
    _get_buffer(data, &view, PyBUF_SIMPLE)
    try:
        _get_key(mask, key)
        result = PyBytes_FromStringAndSize(NULL, view.len)
        _mask_copy_maybe_nogil(<uint8_t*>PyBytes_AS_STRING(result),
                               <const uint8_t*>view.buf, view.len, key, 0)
    finally:
        PyBuffer_Release(&view)
    return result


def apply_mask_into(buffer, mask, offset=0):
    """XOR the writable ``buffer`` in place with the 4-byte ``mask``.

    ``offset`` is how many bytes of the same payload came before ``buffer``:
    ``buffer[0]`` is XOR-ed with ``mask[offset % 4]``. This lets a payload
    that arrives in pieces be unmasked piece by piece without copies.
    """
    cdef Py_buffer view
    cdef uint8_t key[4]
    cdef Py_ssize_t phase
    # The buffer stays exported from before its size is read until the last
    # byte is written, whatever its size: while exported, a bytearray cannot
    # be resized or freed (BufferError), neither by a thread that runs while
    # the GIL is released nor, on a free-threaded build, by one running at the
    # same time. Without the export its pointer and size could change between
    # being read and written: a heap overflow.
    if type(buffer) is bytearray:
        # Cannot fail for a bytearray, and skips _get_buffer's error handler.
        PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
    else:
        _get_buffer(buffer, &view, PyBUF_WRITABLE)
    try:
        # The common arguments, an int offset and a 4-byte bytes key, are
        # read directly; anything else is checked (the shared errors).
        phase = _plain_offset(offset)
        if phase < 0 or not _plain_key(mask, key):
            _get_key(mask, key)
            position = PyNumber_Index(offset)
            if position < 0:
                raise ValueError(Errors.NEGATIVE_OFFSET)
            phase = position % 4
        _mask_copy_maybe_nogil(<uint8_t*>view.buf, <const uint8_t*>view.buf, view.len,
                               key, phase & 3)
    finally:
        PyBuffer_Release(&view)


# UTF-8 ------------------------------------------------------------------------
#
# A DFA over byte classes that rejects at the first byte which cannot continue
# any valid RFC 3629 sequence, so a bad fragment fails as soon as it arrives.
# Classes: 0 ASCII, 1 80-8F, 2 90-9F, 3 A0-BF, 4 never valid (C0 C1 F5-FF),
# 5 C2-DF, 6 E0, 7 E1-EC EE-EF, 8 ED, 9 F0, 10 F1-F3, 11 F4.
# States: 0 accept, 1 reject, 2/3/4 need 1/2/3 continuation bytes, then the
# lead bytes whose second byte is restricted: 5 E0 (A0-BF, no overlong),
# 6 ED (80-9F, no surrogates), 7 F0 (90-BF, no overlong), 8 F4 (80-8F, <= U+10FFFF).

cdef enum:
    UTF8_ACCEPT = 0
    UTF8_REJECT = 1
    UTF8_CLASSES = 12

cdef uint8_t _UTF8_CLASS[256]
cdef uint8_t _UTF8_NEXT[9 * UTF8_CLASSES]


cdef void _build_utf8_tables():
    cdef int b, s, c
    for b in range(256):
        if b < 0x80:
            c = 0
        elif b < 0x90:
            c = 1
        elif b < 0xA0:
            c = 2
        elif b < 0xC0:
            c = 3
        elif b < 0xC2 or b > 0xF4:
            c = 4
        elif b < 0xE0:
            c = 5
        elif b == 0xE0:
            c = 6
        elif b == 0xED:
            c = 8
        elif b < 0xF0:
            c = 7
        elif b == 0xF0:
            c = 9
        elif b < 0xF4:
            c = 10
        else:
            c = 11
        _UTF8_CLASS[b] = c
    for s in range(9 * UTF8_CLASSES):
        _UTF8_NEXT[s] = UTF8_REJECT
    # From accept: ASCII stays, lead bytes open a sequence.
    _UTF8_NEXT[0 * UTF8_CLASSES + 0] = UTF8_ACCEPT
    _UTF8_NEXT[0 * UTF8_CLASSES + 5] = 2
    _UTF8_NEXT[0 * UTF8_CLASSES + 6] = 5
    _UTF8_NEXT[0 * UTF8_CLASSES + 7] = 3
    _UTF8_NEXT[0 * UTF8_CLASSES + 8] = 6
    _UTF8_NEXT[0 * UTF8_CLASSES + 9] = 7
    _UTF8_NEXT[0 * UTF8_CLASSES + 10] = 4
    _UTF8_NEXT[0 * UTF8_CLASSES + 11] = 8
    for c in (1, 2, 3):  # any continuation byte
        _UTF8_NEXT[2 * UTF8_CLASSES + c] = UTF8_ACCEPT
        _UTF8_NEXT[3 * UTF8_CLASSES + c] = 2
        _UTF8_NEXT[4 * UTF8_CLASSES + c] = 3
    _UTF8_NEXT[5 * UTF8_CLASSES + 3] = 2
    _UTF8_NEXT[6 * UTF8_CLASSES + 1] = 2
    _UTF8_NEXT[6 * UTF8_CLASSES + 2] = 2
    _UTF8_NEXT[7 * UTF8_CLASSES + 2] = 3
    _UTF8_NEXT[7 * UTF8_CLASSES + 3] = 3
    _UTF8_NEXT[8 * UTF8_CLASSES + 1] = 3


_build_utf8_tables()


cdef inline uint8_t _utf8_dfa(uint8_t state, const uint8_t* data, Py_ssize_t length) noexcept nogil:
    """Run the DFA from ``state`` over ``data``; the state reached, or REJECT."""
    cdef Py_ssize_t i = 0
    cdef uint64_t w0, w1
    cdef uint64_t high = 0x8080808080808080ULL
    while i < length:
        if state == UTF8_ACCEPT:
            # ASCII fast path: skip 16 bytes at a time while no high bit is set.
            while i + 16 <= length:
                memcpy(&w0, data + i, 8)
                memcpy(&w1, data + i + 8, 8)
                if (w0 | w1) & high:
                    break
                i += 16
            while i < length and data[i] < 0x80:
                i += 1
            if i == length:
                break
        state = _UTF8_NEXT[state * UTF8_CLASSES + _UTF8_CLASS[data[i]]]
        if state == UTF8_REJECT:
            return state
        i += 1
    return state


# Below this many bytes the DFA (with its ASCII word loop) beats setting up
# vector registers; measured with benchmarks/ratios.py-style loops.
cdef Py_ssize_t _UTF8_SIMD_MIN = 32


cdef uint8_t utf8_run(uint8_t state, const uint8_t* data, Py_ssize_t length) noexcept nogil:
    """Validate ``data`` from DFA ``state``; the state reached, or REJECT.

    A character left open by the previous chunk is finished by the DFA; the
    vector kernel then validates the longest run of complete characters, and
    the DFA takes the 0-3 bytes of an unfinished last character (so the
    state carried to the next chunk is exact).
    """
    cdef Py_ssize_t i = 0, end
    while state != UTF8_ACCEPT and i < length:
        state = _UTF8_NEXT[state * UTF8_CLASSES + _UTF8_CLASS[data[i]]]
        if state == UTF8_REJECT:
            return state
        i += 1
    if ws_utf8_impl != NULL and length - i >= _UTF8_SIMD_MIN:
        end = ws_utf8_impl(data + i, <size_t>(length - i))
        if end < 0:
            return UTF8_REJECT
        i += end
    return _utf8_dfa(state, data + i, length - i)


cdef inline uint8_t _utf8_span(uint8_t state, const uint8_t* data, Py_ssize_t length) noexcept:
    if length >= _NOGIL_UTF8:
        with nogil:
            state = utf8_run(state, data, length)
        return state
    return utf8_run(state, data, length)


cdef inline uint8_t _utf8_object(uint8_t state, object data) except? UTF8_REJECT:
    """Validate the bytes-like ``data`` from ``state`` (bytes without the buffer protocol)."""
    cdef Py_buffer view
    if type(data) is bytes:
        # Most payloads are bytes: reading them directly saves acquiring and
        # releasing a buffer (a fifth of a call's fixed cost).
        return _utf8_span(state, <const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
    _get_buffer(data, &view, PyBUF_SIMPLE)
    state = _utf8_span(state, <const uint8_t*>view.buf, view.len)
    PyBuffer_Release(&view)
    return state


cdef int _raise_busy(str name) except -1:
    """The error of a second call into a one-call-at-a-time object."""
    raise RuntimeError(Errors.CONCURRENT_USE.format(name=name))


def validate_utf8(data):
    """Whether ``data`` is valid UTF-8 under RFC 3629.

    Overlong forms, surrogates (U+D800..U+DFFF), code points above U+10FFFF,
    truncated sequences and stray continuation bytes are all invalid.
    """
    return _utf8_object(UTF8_ACCEPT, data) == UTF8_ACCEPT


cdef class Utf8Validator:
    """Incremental UTF-8 validation that fails fast.

    Feed a text message fragment by fragment: :meth:`feed` returns False as
    soon as the bytes seen so far cannot begin any valid UTF-8 text, and keeps
    returning False afterwards. :meth:`finish` says whether the whole input
    was valid (False if it ended inside a sequence) and resets the validator
    for the next message. A code point may be split across chunks at any byte.

    One thread at a time: a call while another is in progress (from a second
    thread, or from code that the first runs) raises :class:`RuntimeError`.
    """

    def __cinit__(self):
        self._state = UTF8_ACCEPT
        self._busy = 0

    def feed(self, data):
        """Validate the next chunk; False once the input can no longer be valid."""
        cdef Py_buffer view
        cdef uint8_t state
        if not ws_enter(&self._busy):
            _raise_busy("Utf8Validator")
        try:
            state = self._state
            if state != UTF8_REJECT:
                state = self._state = _utf8_object(state, data)
            else:  # the same TypeError as before the failure
                _get_buffer(data, &view, PyBUF_SIMPLE)
                PyBuffer_Release(&view)
        finally:
            ws_leave(&self._busy)
        return state != UTF8_REJECT

    def finish(self):
        """True if everything fed was valid and complete; then reset."""
        cdef bint valid
        if not ws_enter(&self._busy):
            _raise_busy("Utf8Validator")
        valid = self._state == UTF8_ACCEPT
        self._state = UTF8_ACCEPT
        ws_leave(&self._busy)
        return valid

    def reset(self):
        """Forget everything fed so far."""
        if not ws_enter(&self._busy):
            _raise_busy("Utf8Validator")
        self._state = UTF8_ACCEPT
        ws_leave(&self._busy)


# Frames -----------------------------------------------------------------------

cdef inline Py_ssize_t _extended_length_size(uint8_t second) noexcept nogil:
    cdef uint8_t length = second & 0x7F
    return 2 if length == 126 else 8 if length == 127 else 0


cdef class FrameParser:
    """Incremental RFC 6455 frame parser.

    :meth:`feed` takes bytes as they arrive, in chunks of any size, and
    returns the frames completed so far with their payloads unmasked. Every
    rule of the frame format is checked, in the order the bytes arrive, and a
    violation raises :class:`ProtocolError` whose ``code`` is the close code
    to send (1002, 1007 or 1009). Frames completed before the bad one in the
    same call are on the exception's ``frames`` attribute, so nothing the peer
    sent correctly is lost. After an error the parser stays failed: every
    later call raises the same error.

    :param mask_expected: True on the server side (client frames must be
        masked), False on the client side (server frames must not be).
    :param max_frame_size: largest payload accepted, checked from the header
        before the payload is buffered (1009 above it); ``None`` for no limit.
    :param allowed_rsv: RSV bits (``RSV1 | RSV2 | RSV3``) that a negotiated
        extension allows on data frames; control frames never carry them.

    One thread at a time: :meth:`feed`, :meth:`pending_payload` or setting
    :attr:`allowed_rsv` while another of these calls is in progress (from a
    second thread, or from code that the first runs) raises
    :class:`RuntimeError` and changes nothing.
    """

    def __init__(self, *, mask_expected, max_frame_size=2**20, allowed_rsv=0):
        if max_frame_size is None:
            self._limit = -1
        elif (not isinstance(max_frame_size, int) or isinstance(max_frame_size, bool)
              or max_frame_size < 0):
            raise ValueError(Errors.BAD_LIMIT)
        else:
            self._limit = min(max_frame_size, PY_SSIZE_T_MAX)
        if allowed_rsv & ~_ALL_RSV:
            raise ValueError(Errors.BAD_RSV)
        self.mask_expected = bool(mask_expected)
        self._allowed_rsv = allowed_rsv
        self._header_have = 0
        self._header_size = 0
        self._in_payload = False
        self._payload = None
        self._error = None

    @property
    def max_frame_size(self):
        return None if self._limit < 0 else self._limit

    @property
    def allowed_rsv(self):
        """RSV bits accepted on data frames; settable once an extension is agreed."""
        return self._allowed_rsv

    @allowed_rsv.setter
    def allowed_rsv(self, bits):
        if bits & ~_ALL_RSV:
            raise ValueError(Errors.BAD_RSV)
        if not ws_enter(&self._busy):
            _raise_busy("FrameParser")
        self._allowed_rsv = bits
        ws_leave(&self._busy)

    @property
    def buffered(self):
        """Bytes received that belong to a frame not yet complete."""
        if self._in_payload:
            return self._header_size + self._filled
        return self._header_have

    def pending_payload(self, offset=0):
        """The frame whose payload is arriving: ``(opcode, rsv1, data)``.

        ``data`` is its payload received so far from ``offset`` on, unmasked,
        so that a text frame can be validated before it is complete (fail
        fast). ``None`` until a frame's header is complete, between frames,
        and after an error.
        """
        cdef Py_ssize_t start = PyNumber_Index(offset)
        if start < 0:
            raise ValueError(Errors.NEGATIVE_OFFSET)
        if not ws_enter(&self._busy):
            _raise_busy("FrameParser")
        try:
            return self._pending_payload(start)
        finally:
            ws_leave(&self._busy)

    cdef object _pending_payload(self, Py_ssize_t start):
        if self._error is not None or not self._in_payload:
            return None
        start = min(start, self._filled)
        if self._payload is None or start == self._filled:
            data = b""
        elif type(self._payload) is bytes:
            data = self._payload[start:self._filled]
        else:
            # Chunks of an unbounded frame: copy only those past ``start``, so
            # that asking again and again as the frame arrives stays linear.
            pieces = []
            position = 0
            for chunk in self._payload:
                end = position + len(chunk)
                if end > start:
                    pieces.append(chunk[max(start - position, 0):])
                position = end
            data = b"".join(pieces)
        return (_OPCODES[self._first & 0x0F], (self._first & RSV1) != 0, data)

    cpdef object whole_message(self, data):
        """``data`` as one message, when it is exactly one small whole message's frame.

        Returns the payload, unmasked: ``bytes`` for a binary frame, ``str``
        for a text frame. That is when nothing is buffered and ``data`` holds
        one final text or binary frame, without RSV bits, masked as expected,
        with a 7- or 16-bit length within ``max_frame_size`` and, for text,
        valid UTF-8; and nothing more. Otherwise None, and the parser is
        unchanged: :meth:`feed` the same ``data``, which applies every rule
        (and raises what the frame breaks).

        The shortcut of a reader that gets one small message per read, the
        usual case of a request and answer protocol: no :class:`Frame` is made.
        """
        cdef Py_buffer view
        cdef bint borrowed
        if not ws_enter(&self._busy):
            _raise_busy("FrameParser")
        try:
            if self._error is not None or self._in_payload or self._header_have:
                return None
            borrowed = _read_view(data, &view)
            try:
                return self._whole_message(<const uint8_t*>view.buf, view.len)
            finally:
                if borrowed:
                    PyBuffer_Release(&view)
        finally:
            ws_leave(&self._busy)

    cdef object _whole_message(self, const uint8_t* data, Py_ssize_t size):
        cdef uint8_t first, second
        cdef Py_ssize_t length, header = 2
        cdef const uint8_t* key = NULL
        cdef bytes payload
        cdef uint8_t* target
        if size < 2:
            return None
        first = data[0]
        second = data[1]
        if (first != 0x81 and first != 0x82) or bool(second & 0x80) != self.mask_expected:
            return None
        length = second & 0x7F
        if length == 127:
            return None
        if length == 126:
            if size < 4:
                return None
            length = (data[2] << 8) | data[3]
            header = 4
        if self._limit >= 0 and length > self._limit:
            return None
        if second & 0x80:
            key = data + header
            header += 4
        if size != header + length:
            return None
        if key == NULL:
            if first == 0x81:
                if utf8_run(UTF8_ACCEPT, data + header, length) != UTF8_ACCEPT:
                    return None
                return PyUnicode_DecodeUTF8(<const char*>data + header, length, NULL)
            return PyBytes_FromStringAndSize(<const char*>data + header, length)
        payload = PyBytes_FromStringAndSize(NULL, length)
        target = <uint8_t*>PyBytes_AS_STRING(payload)
        mask_copy(target, data + header, length, key, 0)
        if first == 0x81:
            if utf8_run(UTF8_ACCEPT, target, length) != UTF8_ACCEPT:
                return None
            return PyUnicode_DecodeUTF8(<const char*>target, length, NULL)
        return payload

    cpdef list feed(self, data):
        """Parse ``data``; return every frame it completed, in order."""
        if not ws_enter(&self._busy):
            _raise_busy("FrameParser")
        try:
            return self._feed(data)
        finally:
            ws_leave(&self._busy)

    cdef list _feed(self, object data):
        cdef Py_buffer view
        cdef list frames = []
        cdef bint borrowed
        if self._error is not None:
            self._error.frames = []
            raise self._error
        # A borrowed buffer is held until the last byte is read: nothing can
        # resize or free it meanwhile.
        borrowed = _read_view(data, &view)
        try:
            self._parse(<const uint8_t*>view.buf, view.len, frames)
        except ProtocolError as error:
            self._error = error
            self._payload = None
            self._in_payload = False
            self._header_have = 0
            error.frames = frames
            raise
        finally:
            if borrowed:
                PyBuffer_Release(&view)
        return frames

    cdef int _parse(self, const uint8_t* data, Py_ssize_t size, list frames) except -1:
        cdef Py_ssize_t pos = 0, take, want, length, phase
        cdef bytes whole
        cdef uint8_t* target
        while True:
            if not self._in_payload:
                if self._header_have == 0 and size - pos >= 2:
                    # Fast path: a whole header in the input is read in place.
                    want = 2 + _extended_length_size(data[pos + 1]) + (4 if data[pos + 1] & 0x80 else 0)
                    if size - pos >= want:
                        self._header_size = self._check_header(data + pos, want)
                        self._start_payload(data + pos)
                        pos += want
                if not self._in_payload:
                    # Slow path: gather the header across calls.
                    while pos < size:
                        want = self._header_size if self._header_size else 2
                        take = min(want - self._header_have, size - pos)
                        memcpy(self._header + self._header_have, data + pos, take)
                        self._header_have += take
                        pos += take
                        self._header_size = self._check_header(self._header, self._header_have)
                        if self._header_size and self._header_have == self._header_size:
                            self._start_payload(self._header)
                            self._header_have = 0
                            break
                    if not self._in_payload:
                        return 0
            length = self._length
            if self._filled == 0 and size - pos >= length:
                # The whole payload is here: unmask it straight into its bytes.
                whole = PyBytes_FromStringAndSize(NULL, length)
                target = <uint8_t*>PyBytes_AS_STRING(whole)
                if self._masked:
                    _mask_copy_maybe_nogil(target, data + pos, length, self._key, 0)
                else:
                    memcpy(target, data + pos, length)
                pos += length
                frames.append(self._finish_frame(whole))
                continue
            if pos == size:
                return 0
            take = min(length - self._filled, size - pos)
            phase = self._filled & 3
            if self._payload is None:
                if length <= _UNBOUNDED_PREALLOC or (
                        self._limit >= 0 and length <= _BOUNDED_PREALLOC):
                    self._payload = PyBytes_FromStringAndSize(NULL, length)
                else:
                    self._payload = []
            if type(self._payload) is bytes:
                whole = self._payload
                target = <uint8_t*>PyBytes_AS_STRING(whole) + self._filled
            else:
                whole = PyBytes_FromStringAndSize(NULL, take)
                self._payload.append(whole)
                target = <uint8_t*>PyBytes_AS_STRING(whole)
            if self._masked:
                _mask_copy_maybe_nogil(target, data + pos, take, self._key, phase)
            else:
                memcpy(target, data + pos, take)
            self._filled += take
            pos += take
            if self._filled < length:
                return 0
            payload = self._payload
            if type(payload) is not bytes:
                payload = b"".join(payload)
            frames.append(self._finish_frame(payload))

    cdef int _check_header(self, const uint8_t* h, Py_ssize_t have) except -1:
        """Check every rule the ``have`` header bytes can show; the header size once known."""
        cdef uint8_t first = h[0], second
        cdef int opcode = first & 0x0F, rsv = first & _ALL_RSV
        cdef bint control = opcode >= 0x8
        cdef Py_ssize_t extended, size
        cdef uint64_t length
        cdef int i
        if not _VALID_OPCODE[opcode]:
            raise ProtocolError(_PROTOCOL_ERROR, Errors.RESERVED_OPCODE.format(opcode=opcode))
        if rsv & ~(0 if control else self._allowed_rsv):
            raise ProtocolError(_PROTOCOL_ERROR, Errors.RESERVED_BITS.format(bits=rsv))
        if control and not first & 0x80:
            raise ProtocolError(_PROTOCOL_ERROR, Errors.FRAGMENTED_CONTROL)
        if have < 2:
            return 0
        second = h[1]
        if bool(second & 0x80) != self.mask_expected:
            raise ProtocolError(_PROTOCOL_ERROR,
                                Errors.UNMASKED if self.mask_expected else Errors.MASKED)
        length = second & 0x7F
        if control and <Py_ssize_t>length > _MAX_CONTROL:
            raise ProtocolError(_PROTOCOL_ERROR, Errors.CONTROL_TOO_LONG.format(length=length))
        extended = _extended_length_size(second)
        size = 2 + extended + (4 if second & 0x80 else 0)
        if have < 2 + extended:
            return size
        if extended:
            length = 0
            for i in range(extended):
                length = (length << 8) | h[2 + i]
            if length >> 63:
                raise ProtocolError(_PROTOCOL_ERROR, Errors.LENGTH_MSB)
        if self._limit >= 0 and length > <uint64_t>self._limit:
            raise PayloadTooBig(Errors.TOO_BIG.format(length=length, limit=self._limit))
        if length > <uint64_t>PY_SSIZE_T_MAX:
            raise PayloadTooBig(Errors.TOO_BIG.format(length=length, limit=sys.maxsize))
        return size

    cdef int _start_payload(self, const uint8_t* h) except -1:
        """Enter the payload state for the complete, checked header ``h``."""
        cdef Py_ssize_t extended = _extended_length_size(h[1]), i
        cdef uint64_t length = h[1] & 0x7F
        if extended:
            length = 0
            for i in range(extended):
                length = (length << 8) | h[2 + i]
        self._first = h[0]
        self._masked = (h[1] & 0x80) != 0
        if self._masked:
            memcpy(self._key, h + 2 + extended, 4)
        self._length = <Py_ssize_t>length
        self._filled = 0
        self._payload = None
        self._in_payload = True
        return 0

    cdef object _finish_frame(self, object payload):
        cdef uint8_t first = self._first
        self._in_payload = False
        self._payload = None
        self._filled = 0
        if first & 0x0F == 0x8:
            parse_close_payload(payload)
        return ws_make_frame(_FRAME, _OPCODES[first & 0x0F], payload, (first & 0x80) != 0,
                             (first & _RSV1) != 0, (first & _RSV2) != 0, (first & _RSV3) != 0)


cdef extern from "Python.h":
    # Cython declares the second argument as an object; NULL asks for clipping.
    Py_ssize_t _clipped_index "PyNumber_AsSsize_t" (object value, void* overflow) except? -1


def encode_frame(opcode, payload, *, fin=True, mask=None, rsv1=False, rsv2=False, rsv3=False):
    """Serialise one frame, with the minimal length encoding.

    ``mask`` is the 4-byte masking key that client frames must carry; ``None``
    (the server side) sends the payload as is. Control frames must have
    ``fin`` set and at most 125 bytes of payload (:class:`ValueError`).
    """
    cdef Py_buffer view
    cdef uint8_t key[4]
    cdef uint8_t* out
    cdef Py_ssize_t length, header, i
    cdef bint masked = mask is not None
    cdef bint borrowed
    cdef int code = -1
    cdef bytes result
    # A C integer, not a Python one: out-of-range values clip (and are refused below).
    cdef Py_ssize_t number = _clipped_index(opcode, NULL)
    if 0 <= number < 16:
        code = <int>number
    if code < 0 or not _VALID_OPCODE[code]:
        raise ValueError(Errors.BAD_OPCODE.format(opcode=opcode))
    borrowed = _read_view(payload, &view)
    try:
        length = view.len
        if code >= 0x8:
            if not fin:
                raise ValueError(Errors.ENCODE_FRAGMENTED_CONTROL)
            if length > _MAX_CONTROL:
                raise ValueError(Errors.ENCODE_CONTROL_TOO_LONG.format(length=length))
        if masked:
            _get_key(mask, key)
        header = 2 if length < 126 else 4 if length < 65536 else 10
        result = PyBytes_FromStringAndSize(NULL, header + (4 if masked else 0) + length)
        out = <uint8_t*>PyBytes_AS_STRING(result)
        out[0] = code | (0x80 if fin else 0) | (_RSV1 if rsv1 else 0) \
            | (_RSV2 if rsv2 else 0) | (_RSV3 if rsv3 else 0)
        out[1] = 0x80 if masked else 0
        if header == 2:
            out[1] |= <uint8_t>length
        elif header == 4:
            out[1] |= 126
            out[2] = (length >> 8) & 0xFF
            out[3] = length & 0xFF
        else:
            out[1] |= 127
            for i in range(8):
                out[2 + i] = (<uint64_t>length >> (56 - 8 * i)) & 0xFF
        if masked:
            memcpy(out + header, key, 4)
            _mask_copy_maybe_nogil(out + header + 4, <const uint8_t*>view.buf, length, key, 0)
        elif length >= _NOGIL_MASK:
            with nogil:
                memcpy(out + header, view.buf, length)
        else:
            memcpy(out + header, view.buf, length)
    finally:
        if borrowed:
            PyBuffer_Release(&view)
    return result
