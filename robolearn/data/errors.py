"""Errors raised by the trajectory store: one line that names the problem and the fix."""

from __future__ import annotations


class StoreError(Exception):
    """A store cannot be opened, read or written as asked. Nothing already written is lost."""


class StoreVersionError(StoreError):
    """The store was written by an unknown or newer format version."""


class EpisodeValidationError(StoreError, ValueError):
    """An episode handed to ``append_episode`` does not match the store's schema."""


class StoreLockedError(StoreError):
    """Another process holds the store's writer lock."""
