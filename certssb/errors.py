"""User-facing errors: the entry point prints them as one line and exits non-zero."""


class CertSSBError(Exception):
    """Base class for errors caused by user input or the environment (not bugs)."""


class ConfigError(CertSSBError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataNotFoundError(CertSSBError):
    """A dataset's files are absent and cannot be downloaded."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text collapsed to one short line, for embedding in our messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ScoreInputError(CertSSBError, ValueError):
    """Scores handed to the certifier are malformed (shape, NaN, negative, rows summing above n)."""
