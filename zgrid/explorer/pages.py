"""The explorer's public web pages (no keys involved)."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["install_pages"]


def install_pages(app: FastAPI) -> None:
    """Add the web pages to the explorer's app."""
