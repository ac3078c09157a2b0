"""The built-in integrations every hub needs, one package each; they use the same hook API as any plugin."""
