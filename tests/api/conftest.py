"""Fixtures for the API tests (see ``apiharness``)."""

from apiharness import api

__all__ = ["api"]
