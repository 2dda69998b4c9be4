"""The asyncio flavour: the ``websockets.asyncio`` API on a buffered protocol.

::

    from wscodec.asyncio import connect, serve

Porting from websockets is a change of import: :func:`serve`,
:func:`connect`, :func:`broadcast`, the connection's ``recv()``,
``recv_streaming()``, ``send()``, ``ping()``, ``close()`` and their options
have websockets' names and defaults (see each one for the differences).

May import the sans-I/O core, :mod:`wscodec.serving` and :mod:`wscodec.sockets`;
never another flavour, the CLI or the demo.
"""

from .broadcast import broadcast
from .client import ClientConnection, connect, unix_connect
from .connection import AsyncConnection, Data
from .messages import ConcurrencyError
from .server import Server, ServerConnection, basic_response, serve, unix_serve

__all__ = [
    "AsyncConnection",
    "ClientConnection",
    "ConcurrencyError",
    "Data",
    "Server",
    "ServerConnection",
    "basic_response",
    "broadcast",
    "connect",
    "serve",
    "unix_connect",
    "unix_serve",
]
