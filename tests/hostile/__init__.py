"""The hostile-client suite (see conftest.py)."""
