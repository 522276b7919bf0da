"""The one refusal every check raises."""

from __future__ import annotations


class VerifyError(Exception):
    """A check that failed, with a stable machine-readable ``code`` and a
    one-line reason for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
