"""Invoices whose files are kept in PostgreSQL large objects."""
