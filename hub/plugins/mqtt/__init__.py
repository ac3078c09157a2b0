"""Built-in mqtt."""
