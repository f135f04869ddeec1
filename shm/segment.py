"""POSIX shared-memory segments under ``/dev/shm`` (Linux).

``multiprocessing.shared_memory`` is deliberately not used: on Python 3.11 its
resource tracker unlinks segments that *other* processes merely attached to
when they exit. Here a segment is a plain file in ``/dev/shm`` created with
``O_CREAT | O_EXCL`` (mode 0600), sized with ``ftruncate`` + ``posix_fallocate``
and mapped with ``mmap``. Nothing is unlinked implicitly: the creator calls
:meth:`Segment.unlink`, and the supervisor calls :func:`sweep_stale` /
:func:`sweep_creator` for processes that died without cleaning up.

Naming: ``<root><serverpid>.<creatorpid>.<ident>``, e.g. ``i1s.4242.4250.sess-1``,
so a sweeper can tell from the name alone whether the owning server or the
creating process is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
from types import TracebackType

SHM_DIR = "/dev/shm"
ROOT = "i1s."
MAX_NAME = 200

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ROOT_RE = re.compile(r"[A-Za-z0-9_-]+\.")


def make_server_prefix(server_pid: int | None = None, root: str = ROOT) -> str:
    """Per-server prefix ``<root><serverpid>.`` (pid defaults to this process)."""
    if not _ROOT_RE.fullmatch(root):
        raise ValueError(f"root must match [A-Za-z0-9_-]+ followed by '.', got {root!r}")
    pid = os.getpid() if server_pid is None else int(server_pid)
    if pid <= 0:
        raise ValueError(f"bad server pid {pid}")
    return f"{root}{pid}."


def segment_name(server_prefix: str, ident: str, creator_pid: int | None = None) -> str:
    """``<server_prefix><creatorpid>.<ident>`` with ``ident`` sanitised to [A-Za-z0-9_-].

    If the ident had to be altered (bad characters or too long) a short hash of
    the original is appended so distinct idents keep distinct names. The
    result is at most :data:`MAX_NAME` characters.
    """
    if "/" in server_prefix or not server_prefix.endswith("."):
        raise ValueError(f"bad server prefix {server_prefix!r}")
    pid = os.getpid() if creator_pid is None else int(creator_pid)
    if pid <= 0:
        raise ValueError(f"bad creator pid {pid}")
    head = f"{server_prefix}{pid}."
    room = MAX_NAME - len(head)
    if room < 16:
        raise ValueError(f"server prefix too long: {server_prefix!r}")
    clean = _UNSAFE.sub("_", ident)
    if clean != ident or not clean or len(clean) > room:
        digest = hashlib.blake2b(ident.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
        clean = f"{clean[: room - 9]}-{digest}"
    return head + clean


def parse_segment_name(name: str, root: str = ROOT) -> tuple[int, int, str] | None:
    """``(server_pid, creator_pid, ident)`` for a name under ``root``, else None."""
    if not name.startswith(root):
        return None
    parts = name[len(root):].split(".", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    server, creator = int(parts[0]), int(parts[1])
    if server <= 0 or creator <= 0:
        return None
    return server, creator, parts[2]


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (PermissionError counts as alive).

    Caveat: pids are namespace-local and can be reused; a recycled pid makes a
    dead owner look alive (the sweep is then merely conservative).
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def _path(name: str) -> str:
    if not name or "/" in name or name in (".", "..") or len(name) > 255 or "\0" in name:
        raise ValueError(f"bad shared-memory segment name {name!r}")
    return os.path.join(SHM_DIR, name)


def list_segments(root: str = ROOT) -> list[str]:
    """Sorted names of all segments in /dev/shm whose name starts with ``root``."""
    try:
        names = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(root))


def unlink_segment(name: str) -> bool:
    """Remove a segment by name regardless of owner; False if it was already gone.

    For supervisors and test cleanup; live mappings stay valid until unmapped.
    """
    try:
        os.unlink(_path(name))
    except FileNotFoundError:
        return False
    return True


def sweep_stale(root: str = ROOT) -> list[str]:
    """Unlink every segment under ``root`` whose server or creator pid is dead.

    Names that do not parse as ``<root><serverpid>.<creatorpid>.<ident>`` are
    left alone. Returns the names actually removed.
    """
    removed: list[str] = []
    alive: dict[int, bool] = {}
    for name in list_segments(root):
        parsed = parse_segment_name(name, root)
        if parsed is None:
            continue
        server, creator = parsed[0], parsed[1]
        for pid in (server, creator):
            if pid not in alive:
                alive[pid] = pid_alive(pid)
        if (not alive[server] or not alive[creator]) and unlink_segment(name):
            removed.append(name)
    return removed


def sweep_creator(server_prefix: str, creator_pid: int) -> list[str]:
    """Unlink every segment of this server created by ``creator_pid`` (dead child)."""
    removed = []
    for name in list_segments(f"{server_prefix}{int(creator_pid)}."):
        if unlink_segment(name):
            removed.append(name)
    return removed


class Segment:
    """One mapped segment. Use :meth:`create` (owner) or :meth:`attach`.

    ``buf`` is a memoryview over the whole mapping (writable unless attached
    with ``readonly=True``). :meth:`close` never raises ``BufferError`` and
    never leaves a dangling pointer: callers should drop the numpy views they
    built on ``buf`` first (then the mapping goes away immediately); views
    still alive keep the mapping valid until they are garbage-collected.
    Closing or garbage-collecting a Segment never unlinks it.
    """

    def __init__(self, name: str, mm: mmap.mmap, owner: bool, readonly: bool) -> None:
        self._name = name
        self._mm: mmap.mmap | None = mm
        self._buf: memoryview | None = memoryview(mm)
        self._size = len(mm)
        self._owner = owner
        self._readonly = readonly
        self._unlinked = False

    @classmethod
    def create(cls, name: str, size: int, *, fallocate: bool = True) -> Segment:
        """Create and map a new zero-filled segment (fails if ``name`` exists).

        With ``fallocate`` the tmpfs pages are reserved up front, so a full
        /dev/shm fails here with ENOSPC instead of SIGBUS on a later write.
        """
        size = int(size)
        if size <= 0:
            raise ValueError(f"segment size must be positive, got {size}")
        path = _path(name)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            if fallocate:
                os.posix_fallocate(fd, 0, size)
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_WRITE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        finally:
            os.close(fd)
        return cls(name, mm, owner=True, readonly=False)

    @classmethod
    def attach(cls, name: str, *, readonly: bool = False) -> Segment:
        """Map an existing segment (FileNotFoundError if missing, ValueError if empty)."""
        fd = os.open(_path(name), os.O_RDONLY if readonly else os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise ValueError(f"shared-memory segment {name!r} is empty (not sized yet?)")
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ if readonly else mmap.ACCESS_WRITE)
        finally:
            os.close(fd)
        return cls(name, mm, owner=False, readonly=readonly)

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return self._size

    @property
    def owner(self) -> bool:
        return self._owner

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def closed(self) -> bool:
        return self._mm is None

    @property
    def buf(self) -> memoryview:
        if self._buf is None:
            raise ValueError(f"segment {self._name!r} is closed")
        return self._buf

    def close(self) -> None:
        """Unmap (idempotent); see the class docstring about live views.

        numpy's ``ndarray(buffer=...)`` does not keep a buffer export, so an
        explicit ``mmap.close()`` could unmap under a live view (segfault).
        Instead the references are dropped: with no views left CPython frees
        the mmap (munmap) right here, otherwise when the last view dies.
        """
        self._buf = None
        self._mm = None

    def unlink(self) -> None:
        """Remove the name from /dev/shm (creator only; idempotent)."""
        if not self._owner:
            raise PermissionError(f"segment {self._name!r} was attached, not created, here; only the creator may unlink")
        if not self._unlinked:
            unlink_segment(self._name)
            self._unlinked = True

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"Segment({self._name!r}, size={self._size}, owner={self._owner}, {state})"
