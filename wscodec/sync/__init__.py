"""The threaded flavour: blocking connections, a server with a thread per connection, a client.

May import the sans-I/O core, :mod:`wscodec.serving` and :mod:`wscodec.sockets`;
never another flavour, the CLI or the demo.

Modules: ``server`` (:func:`~wscodec.serve`), ``client`` (:func:`~wscodec.connect`),
``connection`` (:class:`SyncConnection`, what both hand out), ``nowait`` (its
``send_nowait()``), ``messages`` (its inbox and outbox), ``broadcast``,
``callbacks`` (:class:`~wscodec.CallbackClient`) and ``threads``.
"""
