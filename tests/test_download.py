"""Tests for ssd_lib.datasets.download (and the ``download`` command) on local fixture archives:
file:// URLs and a local HTTP server with Range support. Nothing leaves the machine."""

import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from ssd_lib import datasets
from ssd_lib.datasets import download as voc_download
from ssd_lib.datasets.cli import main
from ssd_lib.datasets.download import Archive, DownloadError, download_file, download_voc, extract_tar


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def voc_tar_bytes(prefix="VOCdevkit/VOC2007", image_set="trainval", n_images=3) -> bytes:
    """A tiny VOC tree (noisy JPEGs, so the archive spans several kB) as an uncompressed tar."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        ids = [f"{index:06d}" for index in range(n_images)]
        for image_id in ids:
            jpeg = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(jpeg, "JPEG")
            add_bytes(tar, f"{prefix}/JPEGImages/{image_id}.jpg", jpeg.getvalue())
            xml = (f"<annotation><size><width>60</width><height>40</height></size><object>"
                   f"<name>dog</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>30</xmax>"
                   f"<ymax>35</ymax></bndbox></object></annotation>")  # fmt: skip
            add_bytes(tar, f"{prefix}/Annotations/{image_id}.xml", xml.encode())
        add_bytes(tar, f"{prefix}/ImageSets/Main/{image_set}.txt", "\n".join(ids).encode())
    return buffer.getvalue()


@pytest.fixture
def served(tmp_path):
    """Write bytes as a file under tmp_path/server and return its file:// URL."""
    def serve(name, data):
        path = tmp_path / "server" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path.as_uri()
    return serve


# ---------------------------------------------------------------------------------------------
# download_voc end to end
# ---------------------------------------------------------------------------------------------


def test_download_voc_extracts_standard_layout(tmp_path, served):
    trainval, test = voc_tar_bytes(), voc_tar_bytes(image_set="test", n_images=2)
    archives = {"voc2007": (Archive(served("VOCtrainval.tar", trainval), md5_of(trainval)),
                            Archive(served("VOCtest.tar", test), md5_of(test)))}  # fmt: skip
    data = tmp_path / "data"
    folders = download_voc(["voc2007"], data, archives=archives, progress=False)
    assert folders == [data / "VOCdevkit" / "VOC2007"]
    records = datasets.parse_voc(folders[0], "trainval", classes=("dog",))
    assert len(records) == 3 and records[0]["labels"].tolist() == [1]
    assert len(datasets.parse_voc(folders[0], "test", classes=("dog",))) == 2
    assert not list((data / "downloads").iterdir())  # archives removed after extraction
    # a second run sees the markers and touches nothing (the server is gone)
    for path in (tmp_path / "server").iterdir():
        path.unlink()
    assert download_voc(["voc2007"], data, archives=archives, progress=False) == folders


def test_download_voc_mirror_layout_and_keep_archives(tmp_path, served):
    """A tar that starts at VOC2012/ (as some mirrors' do) still lands in VOCdevkit/VOC2012."""
    payload = voc_tar_bytes(prefix="VOC2012")
    archives = {"voc2012": (Archive(served("mirror.tar", payload), md5_of(payload)),)}
    folders = download_voc(["voc2012"], tmp_path, archives=archives, progress=False,
                           keep_archives=True)  # fmt: skip
    assert (folders[0] / "Annotations" / "000000.xml").is_file()
    assert (tmp_path / "downloads" / "mirror.tar").read_bytes() == payload


def test_download_voc_unknown_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset\(s\) \['voc2099'\]"):
        download_voc(["voc2099"], tmp_path)


def test_official_archives_table():
    """The URLs are the official host's and every checksum is a 32-digit MD5."""
    names = {archive.filename for group in voc_download.VOC_ARCHIVES.values() for archive in group}
    assert names == {"VOCtrainval_06-Nov-2007.tar", "VOCtest_06-Nov-2007.tar",
                     "VOCtrainval_11-May-2012.tar"}  # fmt: skip
    for group in voc_download.VOC_ARCHIVES.values():
        for archive in group:
            assert archive.url.startswith("http://host.robots.ox.ac.uk/pascal/VOC/voc20")
            assert len(archive.md5) == 32 and int(archive.md5, 16) >= 0


# ---------------------------------------------------------------------------------------------
# checksum, resume, interruption, offline
# ---------------------------------------------------------------------------------------------


def test_corrupted_archive_is_rejected_and_deleted(tmp_path, served):
    payload = voc_tar_bytes()
    corrupted = bytearray(payload)
    corrupted[len(corrupted) // 2] ^= 0xFF
    url = served("VOCtrainval.tar", bytes(corrupted))
    destination = tmp_path / "downloads" / "VOCtrainval.tar"
    with pytest.raises(DownloadError, match=r"checksum mismatch for VOCtrainval.tar: expected "
                       rf"MD5 {md5_of(payload)}, got {md5_of(bytes(corrupted))}.*was deleted"):  # fmt: skip
        download_file(url, destination, md5_of(payload), progress=False)
    assert list(destination.parent.iterdir()) == []
    archives = {"voc2007": (Archive(url, md5_of(payload)),)}
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_voc(["voc2007"], tmp_path / "data", archives=archives, progress=False)
    assert not (tmp_path / "data" / "VOCdevkit").exists()  # nothing extracted


def test_a_hand_placed_archive_with_another_checksum_is_kept(tmp_path, served, caplog):
    """A mirror's copy put in downloads/ by hand (as the offline message suggests): never
    deleted; refused with a message that says how to use it; used with the explicit flag."""
    official, mirror = voc_tar_bytes(), voc_tar_bytes(n_images=2)
    url = served("VOCtrainval.tar", official)
    placed = tmp_path / "downloads" / "VOCtrainval.tar"
    placed.parent.mkdir()
    placed.write_bytes(mirror)
    archives = {"voc2007": (Archive(url, md5_of(official)),)}
    with pytest.raises(DownloadError, match=rf"checksum differs for .*VOCtrainval.tar: expected MD5 "
                       rf"{md5_of(official)}, got {md5_of(mirror)} .*The file is kept. To use it "
                       r"anyway, run again with --accept-checksum-mismatch"):  # fmt: skip
        download_voc(["voc2007"], tmp_path, archives=archives, progress=False)
    assert placed.read_bytes() == mirror and not (tmp_path / "VOCdevkit").exists()
    folders = download_voc(["voc2007"], tmp_path, archives=archives, progress=False,
                           accept_checksum_mismatch=True, keep_archives=True)  # fmt: skip
    assert len(datasets.parse_voc(folders[0], classes=("dog",))) == 2  # the mirror's contents
    assert placed.read_bytes() == mirror
    assert any("--accept-checksum-mismatch" in r.getMessage() for r in caplog.records)


def test_command_line_accepts_a_checksum_mismatch(tmp_path, served, monkeypatch, capsys):
    official, mirror = voc_tar_bytes(), voc_tar_bytes(n_images=1)
    monkeypatch.setitem(voc_download.VOC_ARCHIVES, "voc2007",
                        (Archive(served("t.tar", official), md5_of(official)),))  # fmt: skip
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "t.tar").write_bytes(mirror)
    assert main(["download", "voc2007", "--to", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: checksum differs") and error.count("\n") == 1
    assert main(["download", "voc2007", "--to", str(tmp_path), "--accept-checksum-mismatch"]) == 0
    assert len(datasets.parse_voc(tmp_path / "VOCdevkit" / "VOC2007", classes=("dog",))) == 1


def test_resume_continues_from_the_partial_file(tmp_path, served):
    """The .part's bytes are kept and only the rest is fetched: with a .part whose prefix differs
    from the source, only a real resume produces the expected (prefix + rest) checksum."""
    payload = voc_tar_bytes()
    half = len(payload) // 2
    own_prefix = bytes(255 - byte for byte in payload[:half])
    destination = tmp_path / "file.tar"
    destination.with_name("file.tar.part").write_bytes(own_prefix)
    url = served("file.tar", payload)
    download_file(url, destination, md5_of(own_prefix + payload[half:]), progress=False)
    assert destination.read_bytes() == own_prefix + payload[half:]
    assert not destination.with_name("file.tar.part").exists()


def test_interrupted_download_is_kept_and_resumed(tmp_path, served, monkeypatch):
    payload = voc_tar_bytes()
    url = served("VOCtrainval.tar", payload)
    destination = tmp_path / "VOCtrainval.tar"
    real_open, offsets = voc_download._open_from, []

    class BreaksAfter1000Bytes:
        def __init__(self, stream):
            self.stream, self.reads = stream, 0

        def read(self, size):
            self.reads += 1
            if self.reads > 1:
                raise ConnectionResetError("connection reset by peer")
            return self.stream.read(1000)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

    def open_and_break(url, offset, timeout):
        offsets.append(offset)
        stream, start, total = real_open(url, offset, timeout)
        return BreaksAfter1000Bytes(stream), start, total

    monkeypatch.setattr(voc_download, "_open_from", open_and_break)
    with pytest.raises(DownloadError, match=r"broke off after 1000 bytes.*\.part is kept"):
        download_file(url, destination, md5_of(payload), progress=False)
    assert destination.with_name("VOCtrainval.tar.part").read_bytes() == payload[:1000]
    monkeypatch.setattr(voc_download, "_open_from",
                        lambda *args: offsets.append(args[1]) or real_open(*args))  # fmt: skip
    download_file(url, destination, md5_of(payload), progress=False)
    assert offsets == [0, 1000]
    assert destination.read_bytes() == payload


def test_offline_message_says_where_to_put_the_file(tmp_path):
    url = "http://127.0.0.1:9/VOCtrainval_06-Nov-2007.tar"  # discard port: connection refused
    destination = tmp_path / "downloads" / "VOCtrainval_06-Nov-2007.tar"
    with pytest.raises(DownloadError, match=rf"could not reach {url} .*download "
                       rf"VOCtrainval_06-Nov-2007.tar manually and put it at {destination}"):  # fmt: skip
        download_file(url, destination, progress=False, timeout=5)
    # a manually placed file is verified and used without any network
    payload = voc_tar_bytes()
    destination.write_bytes(payload)
    assert download_file(url, destination, md5_of(payload), progress=False) == destination


def test_missing_file_url_reports_could_not_reach(tmp_path):
    with pytest.raises(DownloadError, match="could not reach file://"):
        download_file((tmp_path / "nowhere.tar").as_uri(), tmp_path / "x.tar", progress=False)


# ---------------------------------------------------------------------------------------------
# HTTP with and without Range support (local server on 127.0.0.1)
# ---------------------------------------------------------------------------------------------


def start_server(payload: bytes, honour_range: bool = True, cut_after: int | None = None):
    """A local HTTP server for one file at /archive.tar (others: 404); ``cut_after`` closes the
    connection after that many body bytes. Returns (url, Range headers seen, server)."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            if self.path != "/archive.tar":
                self.send_error(404, "Not Found")
                return
            range_header = self.headers.get("Range")
            seen.append(range_header)
            start = int(range_header[6:-1]) if (range_header and honour_range) else 0
            body = payload[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if cut_after is None else body[:cut_after])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/archive.tar", seen, server


@pytest.mark.parametrize("honour_range", [True, False])
def test_http_resume(tmp_path, honour_range):
    payload = voc_tar_bytes()
    url, seen, server = start_server(payload, honour_range)
    try:
        destination = tmp_path / "archive.tar"
        destination.with_name("archive.tar.part").write_bytes(payload[:777])
        download_file(url, destination, md5_of(payload), progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["bytes=777-"]
    assert destination.read_bytes() == payload  # a server without Range: restarted from 0


def test_http_connection_lost_then_resumed(tmp_path):
    payload = voc_tar_bytes()
    destination = tmp_path / "archive.tar"
    url, _, server = start_server(payload, cut_after=1500)
    try:
        with pytest.raises(DownloadError, match=r"archive.tar.part is kept: run the command again"):
            download_file(url, destination, md5_of(payload), progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert destination.with_name("archive.tar.part").read_bytes() == payload[:1500]
    url, seen, server = start_server(payload)
    try:
        download_file(url, destination, md5_of(payload), progress=False)
        with pytest.raises(DownloadError, match=r"answered HTTP 404 \(Not Found\) for .*missing.tar"):
            download_file(url.replace("archive", "missing"), tmp_path / "m.tar", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["bytes=1500-"] and destination.read_bytes() == payload


# ---------------------------------------------------------------------------------------------
# safe extraction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_extract_refuses_members_outside_the_folder(tmp_path, kind):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        add_bytes(tar, "VOCdevkit/ok.txt", b"fine")
        if kind == "symlink":
            link = tarfile.TarInfo("VOCdevkit/passwd")
            link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
            tar.addfile(link)
        else:
            # the absolute path points into tmp_path, so even a broken check stays in the sandbox
            add_bytes(tar, "../evil.txt" if kind == "dotdot" else str(tmp_path / "evil.txt"), b"bad")
    with pytest.raises(DownloadError, match="refusing to extract unsafe member"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "VOCdevkit" / "ok.txt").exists()  # nothing written at all


def test_extract_unreadable_archive(tmp_path):
    (tmp_path / "bad.tar").write_bytes(b"not a tar file at all" * 50)
    with pytest.raises(DownloadError, match="bad.tar: cannot extract"):
        extract_tar(tmp_path / "bad.tar", tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def test_command_line_download(tmp_path, served, monkeypatch, capsys):
    payload = voc_tar_bytes()
    monkeypatch.setitem(voc_download.VOC_ARCHIVES, "voc2007",
                        (Archive(served("t.tar", payload), md5_of(payload)),))  # fmt: skip
    assert main(["download", "voc2007", "--to", str(tmp_path)]) == 0
    assert f"ready: {tmp_path / 'VOCdevkit' / 'VOC2007'}" in capsys.readouterr().out
    monkeypatch.setitem(voc_download.VOC_ARCHIVES, "voc2012",
                        (Archive("http://127.0.0.1:9/VOCtrainval_11-May-2012.tar", "0" * 32),))  # fmt: skip
    assert main(["download", "voc2012", "--to", str(tmp_path)]) == 1
    assert "error: could not reach http://127.0.0.1:9/" in capsys.readouterr().err
