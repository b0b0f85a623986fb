"""Queries: metadata filters, plans and their executors."""
