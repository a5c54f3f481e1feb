"""Benchmarks of django-tryon: ``python -m bench`` runs them all (see docs/performance.md)."""
