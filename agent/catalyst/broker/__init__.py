"""Doors to the broker: ``alpaca.py`` (alpaca-py, for trading) and ``lite.py`` (httpx, for fast paths)."""
