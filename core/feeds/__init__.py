"""Feed sources (simulator, MQTT, file replay) and vendor formats. `python -m core.feeds --help`."""
