"""The plugin framework (hook specs, manager) and the built-in integrations every hub needs."""
