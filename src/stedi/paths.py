"""Paths and URIs: the catalog speaks URIs (file://, s3://); engines and files want paths."""

from __future__ import annotations

from urllib.parse import unquote, urlparse


def local_path(uri: str) -> str:
    """A path a local reader opens: `file://` URIs become plain paths; others (s3://) pass through."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri
