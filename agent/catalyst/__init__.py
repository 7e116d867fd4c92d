"""Catalyst: the trading agent that runs on the droplet."""
