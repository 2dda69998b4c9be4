"""The event-driven flavour: selector loops that run many connections on a few threads.

May import the sans-I/O core and :mod:`wscodec.serving`; never another flavour, the CLI or the demo.
"""
