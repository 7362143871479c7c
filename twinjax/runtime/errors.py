"""The error a setting that cannot work raises, from any layer that reads the app's options."""


class ConfigError(ValueError):
    """A setting that cannot work (the app prints the message alone and exits with status 1)."""
