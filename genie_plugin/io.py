"""File I/O with atomic writes and clear errors for bad images.

Writes go to a temporary file in the destination folder and are renamed into place, so an
interrupted run never leaves a half-written PNG or manifest behind.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from genie_plugin.errors import InputImageError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def writable_target(path: str | os.PathLike, option: str | None = None) -> Path:
    """Where writing ``path`` lands: a symlink is written through (its target is replaced and
    the link kept), anything that exists and is not a regular file (a device such as
    ``/dev/null``, a FIFO, a socket, a folder) is refused with one line — a rename over it
    would replace it with a plain file."""
    import stat

    from genie_plugin.errors import ConfigError

    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except NotADirectoryError:
        raise ConfigError(
            f"{_named(path, option)}: a parent of it is a file, not a folder"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "not a regular file (a device, FIFO or socket)"
        )
        raise ConfigError(
            f"{_named(path, option)}: exists and is {kind}; nothing was written — name a file path"
        )
    return target


def _named(path: Path, option: str | None) -> str:
    from genie_plugin.sinks import one_line

    return f"{option} {one_line(path)}" if option else one_line(path)


def check_not_input(out: str | os.PathLike, inputs, option: str) -> None:
    """Refuse an output that is one of the inputs it is computed from (the same file, through
    any link), before anything is read or written."""
    from genie_plugin.errors import ConfigError

    for src in inputs:
        with contextlib.suppress(OSError):
            if Path(out).exists() and os.path.samefile(out, src):
                raise ConfigError(
                    f"{_named(Path(out), option)}: is the input {_named(Path(src), None)}; "
                    "writing it would destroy what it is computed from — name another path"
                )


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``).

    A symlink is written through; an existing non-regular file is refused
    (:func:`writable_target`). ``durable=False`` skips the fsync: a process killed at any point
    still leaves the old file or the whole new one, but a power cut may leave a renamed file
    with lost contents — only for files whose reader verifies them (the augmentation cache
    checks every entry against its manifest hash and regenerates a bad one)."""
    path = writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # ENOSPC on write names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    return path


def link_new_bytes(path: str | os.PathLike, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists: first writer wins.

    The bytes go to a temp file beside it, which is then hard-linked to ``path`` (``link``
    fails with EEXIST rather than replacing: a reader never sees a file change under it, and
    two writers of one name never replace each other's file). False: ``path`` existed and was
    left as it was. Not fsynced (for files whose readers verify them, see
    :func:`atomic_write_bytes`). Where hard links are refused (some FUSE/SMB mounts) the
    temp file is renamed into place only if ``path`` is still absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            if exc.filename is None:  # ENOSPC on write names no file: name the one meant
                raise OSError(exc.errno, exc.strerror, str(path)) from None
            raise
        os.chmod(tmp, _FILE_MODE)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if os.path.lexists(path):
                return False
            os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


#: The header of a sealed file (:func:`seal`): a magic and the sha256 of what follows.
_SEAL_MAGIC = b"GENIE-SEALED-1\n"


def seal(payload: bytes) -> bytes:
    """``payload`` with a header carrying its sha256, so that a reader can tell a whole file
    from one a power cut zeroed or truncated (:func:`unseal`)."""
    import hashlib

    return _SEAL_MAGIC + hashlib.sha256(payload).digest() + payload


def unseal(data: bytes) -> bytes | None:
    """The payload of a :func:`seal`-ed file, or None when its header or hash is wrong."""
    import hashlib

    n = len(_SEAL_MAGIC)
    if not data.startswith(_SEAL_MAGIC) or len(data) < n + 32:
        return None
    payload = data[n + 32 :]
    return payload if hashlib.sha256(payload).digest() == data[n : n + 32] else None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    return atomic_write_bytes(path, png_bytes(image))


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Write a whole JSONL file atomically (sorted keys, one record per line)."""
    lines = [json.dumps(r, sort_keys=True) for r in records]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: 16-bit/float scaled, alpha composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 65535.0
        elif img.mode == "I":
            hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
            arr = arr / hi
        else:  # float images: assume [0, 1] unless clearly [0, 255]
            arr = arr / (255.0 if arr.max(initial=0) > 1.0 else 1.0)
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


#: The largest input image accepted, in pixels (8192 × 8192). Larger ones are refused with a
#: one-line error before decoding (a decompression bomb would take the machine's memory).
MAX_INPUT_PIXELS = 8192 * 8192


def load_image(
    path: str | os.PathLike, *, on_note: Callable[[str], None] | None = None
) -> Image.Image:
    """Open an image file as 8-bit RGB; raise InputImageError naming the file on any problem.

    Grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images are converted,
    not rejected. EXIF orientation is applied so the pixels match what image viewers show. An
    animated image gives its first frame (``on_note`` is told). Images over
    :data:`MAX_INPUT_PIXELS` are refused before they are decoded.
    """
    p = Path(path)
    if not p.exists():
        raise InputImageError(f"{p}: file not found")
    if p.is_dir():
        raise InputImageError(f"{p}: is a folder, expected an image file")
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: our own limit below says more
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        with img:
            w, h = img.size
            if w * h > MAX_INPUT_PIXELS:
                raise InputImageError(
                    f"{p}: {w}×{h} pixels is over the {MAX_INPUT_PIXELS // 2**20} MP limit; "
                    "downscale it first (generation works at 512 px)"
                )
            frames = getattr(img, "n_frames", 1)
            img.load()
            if frames > 1 and on_note is not None:
                on_note(f"{p}: animated ({frames} frames); using the first frame")
            img = ImageOps.exif_transpose(img) or img
            return _to_rgb(img).copy()
    except InputImageError:
        raise
    except Image.DecompressionBombError:
        raise InputImageError(
            f"{p}: too many pixels to decode safely (a decompression bomb?); the limit is "
            f"{MAX_INPUT_PIXELS // 2**20} MP"
        ) from None
    except UnidentifiedImageError:
        raise InputImageError(
            f"{p}: not a readable image (PIL cannot identify the format); pass a PNG/JPEG/WebP file"
        ) from None
    except PermissionError:
        raise InputImageError(f"{p}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputImageError(f"{p}: corrupt or truncated image ({exc})") from None


_FILE_HASHES: dict[tuple[str, int, int, int], str] = {}


def file_sha256(path: str | os.PathLike, memo_dir: str | os.PathLike | None = None) -> str:
    """Full streamed sha256 of a file's content, memoised on (resolved path, size, mtime, ctime).

    Why memoised: multi-GB checkpoints are hashed once, not on every load. ``memo_dir`` also
    keeps the memo on disk across processes (one small file per (path, size, mtime); a
    rewritten file has another mtime, so it is hashed again).
    """
    import hashlib

    p = Path(path).resolve()
    st = p.stat()
    # ctime too: a rewrite that restores the old mtime (cp -p, an archive) still rehashes
    ident = (str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if ident in _FILE_HASHES:
        return _FILE_HASHES[ident]
    memo = None
    if memo_dir is not None:
        name = hashlib.blake2b(repr(ident).encode(), digest_size=16).hexdigest()
        memo = Path(memo_dir) / name[:2] / name
        if memo.is_file():
            text = memo.read_text().strip()
            if len(text) == 64:
                _FILE_HASHES[ident] = text
                return text
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    _FILE_HASHES[ident] = digest
    if memo is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs a rehash
            atomic_write_text(memo, digest)
    return digest
