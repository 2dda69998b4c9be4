"""The threaded flavour: blocking connections, a server with a thread per connection, a client.

May import the sans-I/O core and :mod:`wscodec.serving`; never another flavour, the CLI or the demo.
"""
