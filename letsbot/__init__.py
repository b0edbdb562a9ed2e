"""letsbot: a chat bot that runs a LETS group (local mutual-credit currency)."""

__version__ = "0.1.0"
