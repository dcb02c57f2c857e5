"""Download and extract the official Pascal VOC archives: resumable, checksum-verified, safe.

:func:`download_file` (resume, MD5 or SHA-256 check, progress bar) also fetches the pretrained
weights of ``ssd_lib.pretrained``.

``python -m ssd_lib.datasets download voc2007 voc2012 --to data/`` fetches the archives into
``data/downloads/`` (``<name>.part`` while incomplete; running the command again resumes from the
bytes already there), verifies their MD5 sums, and extracts them into the standard layout
``data/VOCdevkit/VOC2007`` and ``data/VOCdevkit/VOC2012`` (a marker file records each finished
extraction, so a second run does nothing).

Archive URLs are the official host's (http://host.robots.ox.ac.uk/pascal/VOC/); the MD5 sums are
the ones published with torchvision's ``torchvision/datasets/voc.py``, which other projects'
download scripts repeat.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

__all__ = [
    "Archive", "VOC_ARCHIVES", "DownloadError", "download_file", "file_hexdigest", "extract_tar",
    "download_voc",
]  # fmt: skip

_HOST = "http://host.robots.ox.ac.uk/pascal/VOC"

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Archive:
    """One downloadable archive: where it lives, its file name and its MD5 checksum."""

    url: str
    md5: str

    @property
    def filename(self) -> str:
        """The last component of the URL path (``VOCtrainval_06-Nov-2007.tar``)."""
        return Path(urllib.parse.urlparse(self.url).path).name


#: The official archives per dataset name (VOC2007: trainval 439 MB + test 430 MB;
#: VOC2012: trainval 1.9 GB).
VOC_ARCHIVES = {
    "voc2007": (
        Archive(f"{_HOST}/voc2007/VOCtrainval_06-Nov-2007.tar", "c52e279531787c972589f7e41ab4ae64"),
        Archive(f"{_HOST}/voc2007/VOCtest_06-Nov-2007.tar", "b6e924de25625d8de591ea690078ad9f"),
    ),
    "voc2012": (
        Archive(f"{_HOST}/voc2012/VOCtrainval_11-May-2012.tar", "6cd6e144f989b92b3379bac3b3de84fd"),
    ),
}

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download or extraction failed; the message says what to do next."""


def file_hexdigest(path, algorithm: str) -> str:
    """The hex digest of a file's bytes (``algorithm``: a ``hashlib`` name, e.g. ``"sha256"``)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_from(url: str, offset: int, timeout: float):
    """Open ``url`` at byte ``offset``: returns ``(stream, start, total)``.

    ``start`` is where the stream really begins (0 when an HTTP server ignores the Range
    request); ``total`` is the full size in bytes, or None when unknown. ``file://`` URLs are
    opened directly (``urllib`` ignores Range for them) and seeked.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = urllib.request.url2pathname(parsed.path)
        stream = open(path, "rb")
        total = os.fstat(stream.fileno()).st_size
        start = min(offset, total)
        stream.seek(start)
        return stream, start, total
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the range starts at the end: nothing left to fetch
            return None, offset, offset
        raise
    length = response.headers.get("Content-Length")
    if offset and response.status == 206:
        return response, offset, (offset + int(length)) if length else None
    return response, 0, int(length) if length else None


def download_file(
    url: str,
    destination,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    accept_checksum_mismatch: bool = False,
    sha256: str | None = None,
) -> Path:
    """Download ``url`` to ``destination``, resuming a previous partial download, and verify it.

    Bytes go to ``<destination>.part``; a later call continues from its size (HTTP ``Range``, or
    an offset for ``file://``). Only a complete file whose checksums match is renamed to
    ``destination``. A ``destination`` that already exists (e.g. placed there by hand) is
    verified and never deleted: with another checksum (a mirror's copy?) it is used only when
    ``accept_checksum_mismatch`` is set.

    Args:
        url: ``http(s)://`` or ``file://`` URL.
        destination: final file path; its folder is created.
        md5: expected hex MD5, or None to skip the check.
        progress: show a tqdm progress bar (bytes).
        timeout: seconds to wait for the server.
        accept_checksum_mismatch: use a file whose checksum differs (logs a warning) instead
            of refusing it.
        sha256: expected hex SHA-256, or its first hex digits (at least 8: PyTorch's weight
            files carry that many in their names, and ``torch.hub`` checks that prefix), or
            None to skip the check.

    Returns:
        ``destination`` as a Path.

    Raises:
        DownloadError: the host cannot be reached (the message says where to put a manually
            downloaded file), the transfer broke off (the partial file is kept; run again to
            resume), or the checksum does not match: a file found at ``destination`` is kept
            (the message says how to use it), a file this call downloaded is deleted.
    """
    if sha256 is not None and not (8 <= len(sha256) <= 64 and all(c in "0123456789abcdefABCDEF" for c in sha256)):
        raise ValueError(f"sha256: expected 8 to 64 hex digits, got {sha256!r}")
    expected = {"md5": md5, "sha256": sha256}
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        mismatch = _checksum_mismatch(destination, expected, accept_checksum_mismatch)
        if mismatch:
            raise DownloadError(
                f"checksum differs for {destination}: {mismatch} "
                f"(a mirror's copy, or a damaged file?). The file is kept. To use it anyway, run "
                f"again with --accept-checksum-mismatch (accept_checksum_mismatch=True); to "
                f"download the official file from {url}, delete it first"
            )
        return destination
    partial = destination.with_name(destination.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    try:
        stream, start, total = _open_from(url, offset, timeout)
    except urllib.error.HTTPError as error:
        raise DownloadError(
            f"the server answered HTTP {error.code} ({error.reason}) for {url}; download "
            f"{destination.name} manually and put it at {destination}, then run the command again"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(
            f"could not reach {url} ({reason}); download {destination.name} manually and put it "
            f"at {destination}, then run the command again"
        ) from None
    if stream is not None:
        with stream, open(partial, "r+b" if partial.exists() else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=destination.name, disable=not progress, leave=False,
        ) as bar:  # fmt: skip
            out.seek(start)
            out.truncate()
            try:
                for chunk in iter(lambda: stream.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise DownloadError(
                    f"download of {url} broke off after {out.tell()} bytes ({error}); the partial "
                    f"file {partial} is kept: run the command again to resume"
                ) from None
    if total is not None and partial.stat().st_size != total:
        raise DownloadError(
            f"download of {url} ended early ({partial.stat().st_size} of {total} bytes); the "
            f"partial file {partial} is kept: run the command again to resume"
        )
    mismatch = _checksum_mismatch(partial, expected, accept_checksum_mismatch)
    if mismatch:
        partial.unlink()
        raise DownloadError(
            f"checksum mismatch for {destination.name}: {mismatch}; the "
            f"corrupt download {partial} was deleted. Run the command again to download it afresh "
            f"from {url}"
        )
    partial.replace(destination)
    return destination


def _checksum_mismatch(path: Path, expected: dict, accept_mismatch: bool) -> str | None:
    """``"expected MD5 ..., got ..."`` when a checksum of ``path`` differs from ``expected``
    (``{hashlib name: hex digest or its prefix, or None}``), else None; a mismatch that is
    accepted logs a warning and counts as a match."""
    for algorithm, digest in expected.items():
        if digest is None:
            continue
        actual = file_hexdigest(path, algorithm)
        if actual.startswith(digest.lower()):
            continue
        if accept_mismatch:
            logger.warning("using %s although its %s is %s, not the expected %s "
                           "(--accept-checksum-mismatch)", path, algorithm.upper(), actual, digest)  # fmt: skip
            continue
        return f"expected {algorithm.upper()} {digest}, got {actual}"
    return None


def extract_tar(archive, to) -> None:
    """Extract a tar archive into folder ``to``, refusing anything that would land outside it.

    Absolute paths, ``..`` components, links pointing outside ``to`` and device files are
    rejected before anything is written.

    Raises:
        DownloadError: an unsafe member (named) or an unreadable archive.
    """
    archive, to = Path(archive), Path(to)
    to.mkdir(parents=True, exist_ok=True)
    root = to.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                target = (root / member.name).resolve()
                unsafe = not target.is_relative_to(root) or os.path.isabs(member.name)
                if member.issym() or member.islnk():
                    link_base = target.parent if member.issym() else root
                    unsafe |= not (link_base / member.linkname).resolve().is_relative_to(root)
                unsafe |= not (member.isfile() or member.isdir() or member.issym()
                               or member.islnk())  # fmt: skip
                if unsafe:
                    raise DownloadError(
                        f"{archive}: refusing to extract unsafe member {member.name!r} (it would "
                        f"land outside {to} or is a device/link); the archive is not trustworthy"
                    )
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise DownloadError(f"{archive}: cannot extract ({error})") from None


def download_voc(
    names=("voc2007",),
    to="data",
    archives: dict | None = None,
    progress: bool = True,
    keep_archives: bool = False,
    accept_checksum_mismatch: bool = False,
) -> list[Path]:
    """Download and extract Pascal VOC datasets into ``<to>/VOCdevkit/VOC<year>``.

    Args:
        names: keys of ``archives`` (``"voc2007"``, ``"voc2012"``).
        to: data folder; archives go to ``<to>/downloads/``, datasets to ``<to>/VOCdevkit/``.
        archives: name -> sequence of :class:`Archive` (default :data:`VOC_ARCHIVES`; tests pass
            local ``file://`` archives).
        progress: show progress bars.
        keep_archives: keep the ``.tar`` files after extraction (they are deleted by default:
            VOC2007 + VOC2012 take 2.8 GB).
        accept_checksum_mismatch: use archives whose MD5 differs from the official one (e.g.
            a mirror's copy placed in ``<to>/downloads/`` by hand); see :func:`download_file`.

    Returns:
        The dataset folders, e.g. ``[data/VOCdevkit/VOC2007]``.

    Raises:
        ValueError: an unknown dataset name.
        DownloadError: see :func:`download_file` and :func:`extract_tar`.
    """
    archives = VOC_ARCHIVES if archives is None else archives
    unknown = [name for name in names if name not in archives]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; available: {sorted(archives)}")
    to = Path(to)
    devkit = to / "VOCdevkit"
    folders = []
    for name in names:
        for archive in archives[name]:
            marker = devkit / f".{archive.filename}.extracted"
            if marker.exists():
                continue
            path = download_file(archive.url, to / "downloads" / archive.filename, archive.md5,
                                 progress=progress, accept_checksum_mismatch=accept_checksum_mismatch)  # fmt: skip
            with tarfile.open(path) as tar:
                top_level = {member.name.split("/")[0] for member in tar.getmembers()}
            # The official tars start with VOCdevkit/; some mirrors' start at VOC2007/.
            extract_tar(path, to if top_level == {"VOCdevkit"} else devkit)
            marker.write_text(f"{archive.url} {archive.md5}\n")
            if not keep_archives:
                path.unlink()
        folders.append(devkit / name.upper())
    return folders
