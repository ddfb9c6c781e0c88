"""A small site to try warehouse in a browser: invoices kept in PostgreSQL large objects."""
