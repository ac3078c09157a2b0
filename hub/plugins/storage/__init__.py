"""Built-in storage."""
