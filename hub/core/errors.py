"""The hub's exceptions: one flat hierarchy, one line each, so callers can catch precisely."""

from __future__ import annotations


class HubError(Exception):
    """Base class of every error the hub raises on purpose."""


class InvalidMac(HubError, ValueError):
    """A string that is not a MAC address in any accepted spelling."""

    def __init__(self, value: object) -> None:
        super().__init__(f"not a MAC address: {value!r}")
        self.value = value


class ConfigError(HubError):
    """config.yaml (or a file it includes) is unreadable or invalid; ``messages`` lists each problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class ManifestError(HubError, ValueError):
    """A plugin's manifest is missing or malformed; the message says what to fix (the plugin is refused)."""


class StartupError(HubError):
    """A plugin cannot start and the hub must not run without it (a taken port); ``hub run`` exits 1 with the message."""


class ServiceNotFound(HubError):
    """No service is registered under that domain and name."""


class ServiceValidationError(HubError):
    """A service was called with data its schema rejects."""


class HubStateError(HubError):
    """An operation was asked of the hub in a lifecycle state that does not allow it."""


class StorageUnavailable(HubError):
    """Storage cannot do what was asked now (database unreachable, stopped, or a write that never committed)."""


class StorageOverloaded(StorageUnavailable):
    """Storage already holds ``storage: max_pending`` uncommitted readings and refused more."""


class MigrationError(HubError):
    """A plugin's database migrations are declared wrongly or failed to run."""


class InvalidBrokerUrl(HubError, ValueError):
    """A broker URL that is not ``mqtt[s]://[user[:password]@]host[:port]`` (the message never repeats a password)."""


class CommandRejected(HubError):
    """A command was refused before anything was stored or sent; ``code`` says why (e.g. ``invalid_params``)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class CommandNotFound(HubError, LookupError):
    """No command has that id."""


class InvalidTarget(HubError, ValueError):
    """A target (:func:`hub.select_nodes`) that cannot be resolved; ``code``: ``invalid_target``, ``node_not_found``."""

    def __init__(self, message: str, *, code: str = "invalid_target") -> None:
        super().__init__(message)
        self.code = code


class LimitExceeded(HubError):
    """The registry refused to grow past a limit of ``hub: limits:`` (:mod:`hub.core.limits`).

    ``reason`` is the rejection reason to count (``node_limit``, ``node_rate_limit``,
    ``entity_limit``, ``attribute_limit``); the message says which limit and what was refused.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
