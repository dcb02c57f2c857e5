"""``python -m ssd_lib.pretrained download``: resumable, SHA-256 checked, clear when offline.

Every download here comes from this machine (``file://`` or a local HTTP server); the sources'
URLs are replaced by local ones with ``monkeypatch``.
"""

import dataclasses
import hashlib

import pytest
from test_download import start_server  # the local HTTP server with Range support

from ssd_lib.datasets.download import DownloadError, download_file
from ssd_lib.pretrained import SOURCES, download
from ssd_lib.pretrained.cli import main

PAYLOAD = bytes(range(256)) * 400  # 100 kB standing in for the weights file
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def local_source(tmp_path, monkeypatch):
    """Serve PAYLOAD as torchvision-coco's file (file://); returns a function setting its checksum."""
    served = tmp_path / "server" / "weights.pth"
    served.parent.mkdir()
    served.write_bytes(PAYLOAD)

    def with_checksum(sha256, url=served.as_uri()):
        source = dataclasses.replace(SOURCES["torchvision-coco"], url=url, sha256=sha256)
        monkeypatch.setitem(SOURCES, "torchvision-coco", source)
        return source

    return with_checksum


@pytest.mark.parametrize("checksum", [SHA256, SHA256[:8], SHA256.upper()])
def test_download_checks_the_sha256_or_its_prefix(tmp_path, local_source, checksum):
    source = local_source(checksum)
    path = download("torchvision-coco", tmp_path / "models", progress=False)
    assert path == tmp_path / "models" / source.filename and path.read_bytes() == PAYLOAD
    assert download("torchvision-coco", tmp_path / "models", progress=False) == path  # kept


def test_a_bad_checksum_is_refused_and_the_file_deleted(tmp_path, local_source, capsys):
    source = local_source("0" * 64)
    assert main(["download", "torchvision-coco", "--to", str(tmp_path)]) == 1
    error = capsys.readouterr().err.rsplit("\r", 1)[-1]  # after the progress bar
    assert error.count("\n") == 1
    assert error.startswith(f"error: checksum mismatch for {source.filename}: expected SHA256")
    assert not list(tmp_path.glob("*.pth*"))  # neither the file nor a partial one


def test_a_file_placed_by_hand_is_never_deleted(tmp_path, local_source, capsys):
    source = local_source(SHA256)
    placed = tmp_path / source.filename
    placed.write_bytes(b"a mirror's copy")
    assert main(["download", "torchvision-coco", "--to", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"checksum differs for {placed}: expected SHA256 {SHA256}" in error
    assert "--accept-checksum-mismatch" in error and placed.read_bytes() == b"a mirror's copy"
    assert main(["download", "torchvision-coco", "--to", str(tmp_path), "--accept-checksum-mismatch"]) == 0
    assert placed.read_bytes() == b"a mirror's copy"


def test_http_download_resumes_a_partial_file(tmp_path, local_source):
    url, seen, server = start_server(PAYLOAD)
    try:
        source = local_source(SHA256, url)
        (tmp_path / f"{source.filename}.part").write_bytes(PAYLOAD[:1234])
        path = download("torchvision-coco", tmp_path, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["bytes=1234-"] and path.read_bytes() == PAYLOAD


def test_http_bad_checksum_is_refused(tmp_path, local_source):
    url, _, server = start_server(PAYLOAD)
    try:
        local_source(SHA256[:7] + "0", url)
        with pytest.raises(DownloadError, match="checksum mismatch"):
            download("torchvision-coco", tmp_path, progress=False)
    finally:
        server.shutdown()
        server.server_close()


def test_offline_says_in_one_line_where_to_put_the_file(tmp_path, local_source, capsys):
    source = local_source(SHA256, "http://127.0.0.1:9/ssd300_vgg16_coco-b556d3b4.pth")  # nothing listens
    assert main(["download", "torchvision-coco", "--to", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "could not reach http://127.0.0.1:9/" in error
    assert f"put it at {tmp_path / source.filename}" in error


def test_the_ssd_keras_file_is_a_manual_download(tmp_path, capsys):
    assert main(["download", "ssd-keras-voc", "--to", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot be downloaded automatically" in error
    assert "https://drive.google.com/open?id=121-kCXaOHOkJE_Kf5lKcJvC_5q1fYb_q" in error


def test_the_registry_names_the_real_files():
    torchvision = SOURCES["torchvision-coco"]
    assert torchvision.url == "https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth"
    assert torchvision.filename.endswith(f"-{torchvision.sha256}.pth")  # torch.hub's convention
    assert SOURCES["ssd-keras-voc"].filename == "VGG_VOC0712_SSD_300x300_iter_120000.h5"


@pytest.mark.parametrize("sha256", ["abc", "xyz12345", "0" * 65])
def test_a_malformed_sha256_is_refused(tmp_path, sha256):
    with pytest.raises(ValueError, match="sha256: expected 8 to 64 hex digits"):
        download_file((tmp_path / "x").as_uri(), tmp_path / "y", sha256=sha256)


def test_unknown_names_and_files(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown pretrained weights 'yolo'; known: ssd-keras-voc, torchvision-coco"):
        download("yolo", tmp_path)
    assert main(["convert", str(tmp_path / "missing.pth")]) == 1
    assert "missing.pth" in capsys.readouterr().err
