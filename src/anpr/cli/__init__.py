"""The umbrella ``anpr`` command line."""
