"""Fixtures for the Sieve integration tests (see harness.py)."""

from tests.integration.sieve.harness import stack  # noqa: F401
