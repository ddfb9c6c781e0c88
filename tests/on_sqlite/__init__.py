"""A site whose test settings use SQLite, with warehouse installed: its file-free tests run.

tests/test_on_sqlite.py runs ``manage.py test`` on it in a process of its own.
"""
