"""The errors Mailwarden raises, one small hierarchy.

    MailwardenError
     +-- ConfigError        an org.toml, scoring file or setting is missing or invalid
     +-- InputError         a path or file given to a command cannot be read
     |    +-- ReportError    a DMARC or SMTP TLS report cannot be parsed (invalid XML, JSON, compression, limits)
     +-- StoreError         the database cannot be opened, migrated or written

Parsing mail never raises: malformed messages become defects on the Message.
Third-party exceptions are translated at the boundary with ``raise ... from exc``.
"""


class MailwardenError(Exception):
    """Base class of every error Mailwarden raises on purpose."""


class ConfigError(MailwardenError):
    """Raised when a configuration file or setting is missing, unreadable or invalid."""


class InputError(MailwardenError):
    """Raised when a path given to a command does not exist or cannot be read."""


class StoreError(MailwardenError):
    """Raised when the database cannot be opened, migrated or written."""


class ReportError(InputError):
    """Raised when a DMARC aggregate, failure or SMTP TLS report cannot be read; the message says why."""
