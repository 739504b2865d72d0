"""Policies: load, validate and evaluate the rules that score changes and guard actions."""
