"""A gzip tar built while it is sent: constant memory whatever the size of the files.

``tarfile`` wants a whole member at a time; here each header comes from ``TarInfo.tobuf`` and
the file bytes follow in chunks through one zlib stream (``wbits=31`` writes the gzip wrapper),
so a 200 MB file never sits in memory::

    StreamingResponse(tar_gz([("a.txt", 3, Path("/blobs/ab/cd"), 0o644)], mtime=0))
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE


def tar_gz(members: Iterable[tuple[str, int, Path, int]], mtime: float) -> Iterator[bytes]:
    """Yield a ``.tar.gz`` of ``(name, size, source file, mode)`` members."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    written = 0

    def put(data: bytes) -> bytes:
        nonlocal written
        written += len(data)
        return z.compress(data)

    for name, size, source, mode in members:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, mode, int(mtime)
        if out := put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")):
            yield out
        left = size
        with open(source, "rb") as f:
            while left and (chunk := f.read(min(CHUNK, left))):
                left -= len(chunk)
                if out := put(chunk):
                    yield out
        if left:
            raise OSError(f"{source} is shorter than its recorded size")
        put(b"\0" * (-size % BLOCK))
    # End of archive: two zero blocks, then padding to a whole record as tar itself writes.
    end = 2 * BLOCK
    end += -(written + end) % tarfile.RECORDSIZE
    yield put(b"\0" * end) + z.flush()
