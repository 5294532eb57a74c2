"""Errors of the image build. Each message says what to do next."""

from __future__ import annotations


class Error(Exception):
    """Base of every expected image-build error; the command prints it as one line, without a traceback."""


class MissingToolError(Error, FileNotFoundError):
    """A host tool the build needs is not installed."""


class ChecksumError(Error, ValueError):
    """The base image does not have the sha256 the user passed."""


class BaseImageError(Error, ValueError):
    """The base image is not a usable Raspberry Pi OS image (corrupt, wrong layout, wrong release)."""


class SpaceError(Error, OSError):
    """Not enough free space (in the output directory or in the image's root filesystem)."""


class DownloadError(Error, OSError):
    """Fetching wheels or Debian packages failed."""


class ToolFailedError(Error, RuntimeError):
    """A host tool (debugfs, mtools, sfdisk, ...) reported a failure."""
