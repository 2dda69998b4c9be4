"""wscodec under ASGI servers.

:mod:`wscodec.asgi.uvicorn` is uvicorn's WebSocket implementation on wscodec,
loaded through uvicorn's own ``--ws`` option::

    uvicorn app:app --ws wscodec.asgi.uvicorn:WebSocketProtocol

or, from Python::

    import uvicorn
    from wscodec.asgi.uvicorn import WebSocketProtocol

    uvicorn.run(app, ws=WebSocketProtocol)

This package imports nothing from uvicorn; only its ``uvicorn`` module does
(``pip install 'wscodec[asgi]'``).
"""
