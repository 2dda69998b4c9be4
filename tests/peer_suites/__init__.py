"""Each peer library's own WebSocket tests, without and with wscodec's adapter.

``python -m tests.peer_suites LIB [--source PATH] [--backend cython|python|both]``
runs a library's own tests twice: as-is, then with ``wscodec.integrations.<lib>``
installed before the library is imported (by the pytest plugin in
``plugin/``), once per wscodec backend. Every test that passes without the
adapter must pass with it, apart from the tests listed in ``excused.toml``;
the command exits non-zero otherwise.

* ``libraries.py``: one small table entry per library (where its tests are,
  what they need, which adapter);
* ``sources.py``: the tests' source, the sdist of the *installed* version
  (downloaded with pip, cached) or a checkout, copied into a staging directory;
* ``results.py``: the outcomes each run recorded, the counts and the verdict;
* ``plugin/wscodec_peer_adapter.py``: installs the adapter inside pytest and
  records every test's outcome.
"""
