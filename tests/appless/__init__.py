"""An app for a site that uses DbFileField without installing warehouse (tests/appless/site.py)."""
