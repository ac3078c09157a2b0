"""The plugin framework: manifests, discovery, dependency order, config-section ownership, and the manager that calls hooks."""
