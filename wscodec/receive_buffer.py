"""Where a connection's socket is read into: :class:`ReceiveBuffer`.

The sync flavour reads into one per connection, the asyncio one hands a
shared one to the event loop (``get_buffer()``). Compiled, this module is an
extension type too (``wscodec._receive_buffer_c``, typed in
``src/wscodec/_receive_buffer_c.pxd``): the asyncio connection calls
:meth:`ReceiveBuffer.filled` once per read, and a Python call there cost
more than parsing a small frame.
"""

from __future__ import annotations

import socket

from . import _backend

__all__ = ["ReceiveBuffer"]

_RECEIVE_BUFFER = 65536
_LARGE_RECEIVE_BUFFER = 1 << 20
_SHRINK_AFTER = 16


class ReceiveBuffer:
    """Where the socket is read into, sized to what arrives.

    A read that fills the buffer means more is waiting (a large message): the
    next reads use a 1 MiB buffer, so a 1 MiB message takes a few reads (and a
    few parser calls) instead of sixteen; after _SHRINK_AFTER reads in a row
    that the small buffer would have held, the small one is used again.
    """

    __slots__ = ("_small", "_small_reads", "view")

    def __init__(self) -> None:
        self._small = memoryview(bytearray(_RECEIVE_BUFFER))
        #: Where the next read goes (an event loop's ``get_buffer()`` hands it
        #: out). An attribute, not a property: it is read once per read.
        self.view = self._small
        self._small_reads = 0

    def read(self, sock: socket.socket) -> memoryview:
        """Read what the socket has (empty at EOF); valid until the next read."""
        return self.filled(sock.recv_into(self.view))

    def filled(self, count: int) -> memoryview:
        """The ``count`` bytes just read into :attr:`view`; sizes the next one."""
        view = self.view
        if count == len(view):
            if view is self._small:
                self.view = memoryview(bytearray(_LARGE_RECEIVE_BUFFER))
            self._small_reads = 0
        elif view is not self._small:
            self._small_reads = self._small_reads + 1 if count <= _RECEIVE_BUFFER else 0
            if self._small_reads >= _SHRINK_AFTER:
                self.view = self._small
                self._small_reads = 0
        return view[:count]


#: The pure-Python class, whichever backend is active (the twins' tests compare them).
PythonReceiveBuffer = ReceiveBuffer
if __name__ == "wscodec.receive_buffer":
    # With the compiled backend: this module's own source, built as an
    # extension type (setup.py; its attributes are typed in
    # src/wscodec/_receive_buffer_c.pxd).
    _compiled = _backend.compiled_twin("wscodec._receive_buffer_c")
    if _compiled is not None:
        # Through globals(): in the compiled build the name is an extension
        # type, which Cython will not let the module rebind.
        globals()["ReceiveBuffer"] = _compiled.ReceiveBuffer
