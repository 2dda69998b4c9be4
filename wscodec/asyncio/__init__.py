"""The asyncio flavour (to come): a buffered protocol with the ``websockets.asyncio`` API.

May import the sans-I/O core and :mod:`wscodec.serving`; never another flavour, the CLI or the demo.
"""
