"""Built-in broker."""
