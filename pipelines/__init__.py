"""Guizhou volunteer-service ETL: the Dagster code location and the plain functions under it."""
