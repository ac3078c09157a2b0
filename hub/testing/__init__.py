"""Test support shipped with the hub: pytest fixtures for plugin authors and node simulators."""
