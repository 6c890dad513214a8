"""Helpers shared by the test suite: databases, live servers, factories."""
