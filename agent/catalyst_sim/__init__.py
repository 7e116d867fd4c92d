"""An Alpaca-compatible broker simulator (Trading API v2 and Market Data API v2 subset)."""
