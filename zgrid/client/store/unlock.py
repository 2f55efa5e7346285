"""How a store gets its key: a passphrase, a key file, or a person asked at a prompt."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["KEY_FILE_VARIABLE", "PASSPHRASE_VARIABLE", "Prompt", "Unlocker"]

PASSPHRASE_VARIABLE = "ZGRID_PASSPHRASE"
KEY_FILE_VARIABLE = "ZGRID_KEY_FILE"

# prompt(text, confirm) -> passphrase; ``confirm`` is True when a new store is made and the
# person should type it twice.
Prompt = Callable[[str, bool], str]


class Unlocker:
    """The ways a store may be opened; which one is used depends on how the store was made.

    A store made with a key file opens only with ``key_file``; one made with a passphrase
    opens with ``passphrase``, else by asking ``prompt``. A new store uses ``key_file`` if
    given (made there if missing), else ``passphrase``, else asks ``prompt`` twice.
    """

    __slots__ = ("_passphrase", "key_file", "prompt")

    def __init__(
        self,
        passphrase: str | None = None,
        key_file: Path | None = None,
        prompt: Prompt | None = None,
    ) -> None:
        self._passphrase = passphrase or None
        self.key_file = key_file
        self.prompt = prompt

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, prompt: Prompt | None = None) -> Unlocker:
        """From ``$ZGRID_PASSPHRASE`` and ``$ZGRID_KEY_FILE`` (an empty one counts as unset)."""
        key_file = environ.get(KEY_FILE_VARIABLE) or None
        return cls(
            passphrase=environ.get(PASSPHRASE_VARIABLE) or None,
            key_file=Path(key_file).expanduser() if key_file else None,
            prompt=prompt,
        )

    @property
    def passphrase(self) -> str | None:
        return self._passphrase

    def __repr__(self) -> str:  # never the passphrase itself
        given = [
            name
            for name, value in (
                ("passphrase", self._passphrase),
                ("key_file", self.key_file),
                ("prompt", self.prompt),
            )
            if value is not None
        ]
        return f"Unlocker({', '.join(given) or 'nothing'})"
