"""User-facing errors: the entry point prints them as one line and exits non-zero."""


class CertSSBError(Exception):
    """Base class for errors caused by user input or the environment (not bugs)."""


class ConfigError(CertSSBError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataNotFoundError(CertSSBError):
    """A dataset's files are absent and cannot be downloaded."""


class ScoreInputError(CertSSBError, ValueError):
    """Scores handed to the certifier are malformed (shape, NaN, negative, rows summing above n)."""
