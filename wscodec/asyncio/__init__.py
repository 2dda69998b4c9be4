"""The asyncio flavour (reserved): a buffered protocol with the ``websockets.asyncio`` API.

May import the sans-I/O core, :mod:`wscodec.serving` and :mod:`wscodec.sockets`;
never another flavour, the CLI or the demo.
"""
