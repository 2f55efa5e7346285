"""The root of every error zgrid raises on purpose.

Each package has its own ``errors.py`` with one root exception deriving from
:class:`ZgridError`; the CLI and HTTP edges catch ``ZgridError`` and turn it into
one clear line (or a JSON error body) instead of a traceback.
"""

__all__ = ["ZgridError"]


class ZgridError(Exception):
    """Something went wrong that zgrid can explain in one line."""
