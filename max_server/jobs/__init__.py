"""Durable jobs: one table, claimed with leases on the database clock, retried with backoff."""
