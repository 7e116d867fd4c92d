"""Shared helpers for the pyinfra deploys (roles/<role>/deploy.py) and the pyinfra inventories."""
