"""A site that installs warehouse under the label "files" (tests/relabelled/site.py)."""
