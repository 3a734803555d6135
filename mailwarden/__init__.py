"""Mailwarden: open email defence against supply-chain attacks.

Kept light on import: the heavy modules (parser, pipeline, store) load when used.
"""

__version__ = "0.1.0"
