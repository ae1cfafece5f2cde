"""pyiceberg's PyArrowFileIO for an S3 root, with S3's answer for a missing key read right.

pyiceberg asks whether a file exists before it writes one (each new metadata file). S3 answers that HEAD
with 403, not 404, when the caller's s3:ListBucket does not cover the request, as the role `stedi deploy
aws` writes does not: there a refused HEAD is settled by a listing of the file's folder (storage/s3.py
`listed`), as stedi's own storage does. Set as `py-io-impl` by `S3Connection.iceberg_properties`."""

from __future__ import annotations

import pyarrow.fs as pafs
from pyiceberg.io.pyarrow import BUFFER_SIZE, ONE_MEGABYTE, PyArrowFile, PyArrowFileIO

from stedi.storage.s3 import is_denied, listed


class File(PyArrowFile):
    def exists(self) -> bool:
        try:
            return super().exists()
        except OSError as exc:  # PermissionError included: pyiceberg's name for a 403
            if not isinstance(self._filesystem, pafs.S3FileSystem) or not (
                    isinstance(exc, PermissionError) or is_denied(exc)):
                raise
            return listed(self._filesystem, self._path)


class FileIO(PyArrowFileIO):
    def new_input(self, location: str) -> File:
        return self._file(location)

    def new_output(self, location: str) -> File:
        return self._file(location)

    def _file(self, location: str) -> File:
        scheme, netloc, path = self.parse_location(location, self.properties)
        return File(fs=self.fs_by_scheme(scheme, netloc), location=location, path=path,
                    buffer_size=int(self.properties.get(BUFFER_SIZE, ONE_MEGABYTE)))
