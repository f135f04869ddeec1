"""The one exception type of the ingest package.

``code`` is always an Inter-1 protocol error code (safe to forward to the client):

- ``ih5004`` (:data:`MALFORMED_MEDIA`): the byte stream is not decodable
  WebM (bad EBML header or DocType, invalid vint, impossible element size,
  block for an undeclared track, a second EBML header, garbage, a packet the
  codec rejects).  Always fatal.
- ``ih5001`` (:data:`NO_VIDEO`): the container is fine but there is no usable
  video.  Non-fatal (reported in ``DecodedMedia.warnings``) while audio is
  usable; fatal (raised) when there is no usable audio either.

``fatal=False`` marks a warning (``DecodedMedia.warnings``): the session goes on.
"""

from __future__ import annotations

NO_VIDEO = "ih5001"
MALFORMED_MEDIA = "ih5004"


class IngestError(Exception):
    """A media problem with a protocol ``code`` and a human-readable ``message``."""

    def __init__(self, code: str, message: str, *, fatal: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"IngestError({self.code!r}, {self.message!r}, fatal={self.fatal})"

    def __reduce__(self):  # picklable across processes despite the keyword-only argument
        return (_rebuild, (self.code, self.message, self.fatal))


def _rebuild(code: str, message: str, fatal: bool) -> IngestError:
    return IngestError(code, message, fatal=fatal)
