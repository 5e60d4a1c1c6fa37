"""Entity resolution: which source accounts, teams and service records are one.

Pure functions over frames (no Dagster): volunteers.py, organizations.py, services.py, with
keys.py (stable keys), clustering.py, comparisons.py, evidence.py, survivorship.py; store.py
reads the staged files, keeps state across syncs and writes DATA_DIR/resolved/ (resolve_all).
"""
