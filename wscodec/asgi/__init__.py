"""wscodec under ASGI servers.

:mod:`wscodec.asgi.uvicorn` is uvicorn's WebSocket implementation on wscodec,
loaded through uvicorn's own ``--ws`` option:

.. code-block:: sh

    uvicorn app:app --ws wscodec.asgi.uvicorn:WebSocketProtocol

or, from Python, ``uvicorn.run(app, ws=WebSocketProtocol)`` (with
``from wscodec.asgi.uvicorn import WebSocketProtocol``).

This package imports nothing from uvicorn; only its ``uvicorn`` module does
(``pip install 'wscodec[asgi]'``).
"""
