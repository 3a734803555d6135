"""Analyzers: one module per concern, each ``analyze(message, context) -> list[Signal]``.

Every module declares ``NAME`` (used to disable it from config) and ``SIGNALS`` (the ids it may emit,
each with a weight in scoring.toml). The order here is the order they run in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from mailwarden.analyzers import attachments, auth, bec, content, headers, intel, lookalike, sender, urls

if TYPE_CHECKING:
    from mailwarden.message import Message
    from mailwarden.pipeline import Context
    from mailwarden.signals import Signal


class Analyzer(Protocol):
    @property
    def NAME(self) -> str: ...  # module constants satisfy this protocol

    @property
    def SIGNALS(self) -> Sequence[str]: ...

    def analyze(self, message: Message, context: Context) -> list[Signal]: ...


_IN_ORDER: list[Analyzer] = [headers, auth, urls, attachments, lookalike, content, sender, bec, intel]
ANALYZERS: tuple[Analyzer, ...] = tuple(_IN_ORDER)
