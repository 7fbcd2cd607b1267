"""Helpers for testing plugins and pipelines (a pytest plugin is registered through the `pytest11` entry point)."""
