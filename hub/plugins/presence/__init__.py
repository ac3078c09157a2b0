"""Built-in presence (placeholder until implemented)."""
