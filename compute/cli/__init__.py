"""The computectl command line."""
