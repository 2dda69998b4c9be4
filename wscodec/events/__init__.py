"""The event-driven flavour: selector loops that run many connections on a few threads.

May import the sans-I/O core, :mod:`wscodec.serving` and :mod:`wscodec.sockets`;
never another flavour, the CLI or the demo.

Modules: ``server`` (:func:`~wscodec.serve_events`), ``loop`` (one selector loop),
``connection`` (:class:`EventConnection` and the :class:`EventHandler` it calls), ``poller``,
``broadcast`` (:func:`broadcast`: one frame encoded for many connections).
"""

from .broadcast import broadcast

__all__ = ["broadcast"]
