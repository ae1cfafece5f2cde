"""Where a report is written: a local file (written whole, then renamed into place, so a reader never
sees half a page) or an object in a bucket, through pyarrow's S3 file system as stedi's storage reaches it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from stedi.errors import StorageError
from stedi.storage.files import open_uri
from stedi.storage.s3 import explain, is_s3

if TYPE_CHECKING:
    from stedi.storage.s3 import S3Connection


def write_page(page: str, out: str, s3: S3Connection | None) -> str:
    """Write `page` to `out` (a path or s3://bucket/key); returns where it went."""
    data = page.encode("utf-8")
    if is_s3(out):
        fs, path = open_uri(out, s3)
        try:
            with fs.open_output_stream(path, metadata={"Content-Type": "text/html; charset=utf-8"}) as stream:
                stream.write(data)
        except OSError as exc:
            raise explain(exc, f"the report at {out}", s3) from None
        return out
    target = Path(out).expanduser()
    if target.is_dir():
        raise StorageError(f"cannot write the report to {out}: it is a folder; give a file name such as "
                           f"{target / 'report.html'}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            os.fchmod(fd, 0o644)  # a page to share, not a secret (mkstemp makes it the owner's only)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write the report to {out} ({exc.strerror or exc})") from None
    return str(target.absolute())
