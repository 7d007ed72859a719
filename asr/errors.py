"""Errors of the recognizer package; every message names the file or directory at fault."""

from __future__ import annotations


class AsrError(Exception):
    """Base class of recognizer errors."""


class ModelError(AsrError):
    """A model directory is missing, incomplete or corrupt; the message says how to fix it."""


class AudioFormatError(AsrError):
    """An audio file cannot be read or has a format the recognizer does not take."""
