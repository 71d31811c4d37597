"""Wardsight domain package: pure Python, no Streamlit. Time is tz-aware UTC, `now` is passed in."""
__version__ = "0.1.0"
