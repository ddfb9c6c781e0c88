"""Keep users' important files in PostgreSQL large objects, inside your transactions."""

__version__ = "0.1.0"
