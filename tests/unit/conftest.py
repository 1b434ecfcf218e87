"""Fixtures shared by unit test modules: the store kinds (tests/unit/store_jobs.py)."""

from tests.unit.store_jobs import durable, stores

__all__ = ["durable", "stores"]
