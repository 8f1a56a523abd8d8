"""Contracts: the schema and rules of every record and table, defined once (Pydantic)."""
