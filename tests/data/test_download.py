"""cnnlib.data.download against a real HTTP server on 127.0.0.1 serving an archive built here."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest
from conftest import make_dataset, tree_digest

from cnnlib.data import dataset, download, locate
from cnnlib.store import files

CLASSES = ("alpha", "beta")
MEMBER = "caltech-101/101_ObjectCategories.tar.gz"


def _tar_of(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """A .tar.gz of ``folder`` under ``101_ObjectCategories/`` (plus raw ``extra`` members)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname="101_ObjectCategories")
        for name, payload in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _zip_of(tar_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MEMBER, tar_bytes)
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` over HTTP on a free loopback port; yields the base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def archive(tmp_path):
    """Source images, their checksum list, and the zip bytes in the official layout."""
    source = make_dataset(tmp_path / "source", CLASSES + ("gamma",), per_class=3)
    sums = tmp_path / "SUMS"
    sums.write_text(
        "".join(
            f"{dataset.file_sha256(p)}  {p.relative_to(source).as_posix()}\n" for p in sorted(source.rglob("*.jpg"))
        )
    )
    tar_bytes = _tar_of(source)
    return source, sums, tar_bytes, _zip_of(tar_bytes)


def test_download_verifies_and_extracts_only_needed_classes(server, archive, tmp_path):
    url, www = server
    source, sums, tar_bytes, zip_bytes = archive
    (www / "caltech-101.zip").write_bytes(zip_bytes)
    raw = tmp_path / "raw"
    root = download.download_caltech101(
        raw,
        CLASSES,
        url=f"{url}/caltech-101.zip",
        zip_sha256=hashlib.sha256(zip_bytes).hexdigest(),
        tar_member=MEMBER,
        tar_md5=hashlib.md5(tar_bytes).hexdigest(),
        checksums=sums,
    )
    assert root == raw / "101_ObjectCategories"
    assert sorted(p.name for p in root.iterdir()) == ["alpha", "beta"]  # gamma not extracted
    assert (root / "beta" / "image_0002.jpg").read_bytes() == (source / "beta" / "image_0002.jpg").read_bytes()
    assert locate.find_dataset(CLASSES, env={}, raw_dir=raw) == root
    assert sorted(p.name for p in raw.iterdir()) == ["101_ObjectCategories", "caltech-101.zip"]


def test_checksum_mismatch_removes_partial_file(server, archive, tmp_path):
    url, www = server
    (www / "caltech-101.zip").write_bytes(archive[3])
    raw = tmp_path / "raw"
    with pytest.raises(dataset.DatasetError, match="Checksum mismatch .* partial file was removed"):
        download.download_caltech101(
            raw,
            CLASSES,
            url=f"{url}/caltech-101.zip",
            zip_sha256="0" * 64,
            tar_member=MEMBER,
            tar_md5=None,
            checksums=None,
        )
    assert list(raw.iterdir()) == []


def test_missing_url_gives_clear_error(server, tmp_path):
    url, _ = server
    with pytest.raises(dataset.DatasetError, match="Download of .* failed"):
        download.fetch(f"{url}/absent.zip", tmp_path / "dl" / "x.zip", sha256=None)
    assert list((tmp_path / "dl").iterdir()) == []  # no partial file left to trust


def test_member_escaping_target_is_refused(archive, tmp_path):
    source = archive[0]
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(_tar_of(source, {"101_ObjectCategories/alpha/../../../escaped.txt": b"x"}))
    with pytest.raises(dataset.DatasetError, match="Refused unsafe archive member"):
        download.extract_classes(evil, tmp_path / "target", CLASSES)
    assert not (tmp_path / "escaped.txt").exists()


def test_altered_image_in_archive_fails_verification(server, archive, tmp_path):
    url, www = server
    source, sums, _, _ = archive
    (source / "alpha" / "image_0001.jpg").write_bytes(b"tampered")
    tar_bytes = _tar_of(source)
    (www / "caltech-101.zip").write_bytes(_zip_of(tar_bytes))
    with pytest.raises(dataset.DatasetError, match="do not match"):
        download.download_caltech101(
            tmp_path / "raw",
            CLASSES,
            url=f"{url}/caltech-101.zip",
            zip_sha256=None,
            tar_member=MEMBER,
            tar_md5=None,
            checksums=sums,
        )
    assert not (tmp_path / "raw" / "101_ObjectCategories").exists()


def test_interrupted_download_leaves_nothing_to_trust(tmp_path):
    """A server that promises more bytes than it sends, then hangs up."""

    class CutOff(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutOff)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(dataset.DatasetError, match="Download of .* failed"):
            download.fetch(f"http://127.0.0.1:{httpd.server_address[1]}/z.zip", tmp_path / "dl" / "z.zip", None)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list((tmp_path / "dl").iterdir()) == []


# --------------------------------------------------------------------------- issue 12


def test_existing_zip_is_reverified_every_time(archive, tmp_path):
    source, sums, tar_bytes, zip_bytes = archive
    raw = tmp_path / "raw"
    raw.mkdir()
    other_source = make_dataset(tmp_path / "other", CLASSES, per_class=3, seed=9)
    stale = _zip_of(_tar_of(other_source))  # a well-formed zip, but not the official one
    (raw / "caltech-101.zip").write_bytes(stale)
    with pytest.raises(dataset.DatasetError, match="caltech-101.zip is not the official archive .*Delete it and rerun"):
        download.download_caltech101(
            raw,
            CLASSES,
            url="http://127.0.0.1:9/never-contacted",
            zip_sha256=hashlib.sha256(zip_bytes).hexdigest(),
            tar_member=MEMBER,
            tar_md5=None,
            checksums=None,
        )
    assert sorted(p.name for p in raw.iterdir()) == ["caltech-101.zip"]  # nothing extracted from it
    assert (raw / "caltech-101.zip").read_bytes() == stale  # and it is not modified


def test_stale_partial_download_is_swept_and_unwritable_folder_named(server, archive, tmp_path):
    url, www = server
    (www / "caltech-101.zip").write_bytes(archive[3])
    raw = tmp_path / "raw"
    raw.mkdir()
    killed = raw / ".caltech-101.zip.a8b7c6.part"  # left by a run killed mid-download
    killed.write_bytes(b"x" * 100)
    day_ago = time.time() - 86400
    os.utime(killed, (day_ago, day_ago))
    download.fetch(f"{url}/caltech-101.zip", raw / "caltech-101.zip", hashlib.sha256(archive[3]).hexdigest())
    assert sorted(p.name for p in raw.iterdir()) == ["caltech-101.zip"]
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where data/raw/ should be")
    with pytest.raises(files.OutputNotWritable, match="Cannot write .*blocker/caltech-101.zip"):
        download.fetch(f"{url}/caltech-101.zip", blocker / "caltech-101.zip", None)


def test_damaged_zip_in_raw_is_a_dataset_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "caltech-101.zip").write_bytes(b"PK\x03\x04 not really a zip")
    before = tree_digest(raw)
    with pytest.raises(dataset.DatasetError, match="caltech-101.zip is not a readable zip archive"):
        download.download_caltech101(
            raw, CLASSES, url="http://127.0.0.1:9/x", zip_sha256=None, tar_member=MEMBER, tar_md5=None, checksums=None
        )
    assert tree_digest(raw) == before


def test_unknown_class_names_its_nearest_archive_names_and_installs_nothing(server, archive, tmp_path):
    url, www = server
    source, sums, tar_bytes, zip_bytes = archive
    (www / "caltech-101.zip").write_bytes(zip_bytes)
    raw = tmp_path / "raw"
    with pytest.raises(dataset.DatasetError, match=r"1 of the 2 requested classes: 'betta' \(nearest: beta\)"):
        download.download_caltech101(
            raw,
            ("alpha", "betta"),
            url=f"{url}/caltech-101.zip",
            zip_sha256=None,
            tar_member=MEMBER,
            tar_md5=None,
            checksums=None,
        )
    assert not (raw / "101_ObjectCategories").exists()  # not even 'alpha': nothing half-installed
    assert not [p for p in raw.iterdir() if p.name.startswith(".")]  # no scratch left


def test_downloaded_and_written_files_get_the_umask_mode(server, archive, tmp_path):
    """mkstemp makes 0600 files; whatever is renamed into place gets the mode a normal file gets (umask)."""
    url, www = server
    (www / "caltech-101.zip").write_bytes(archive[3])
    old = os.umask(0o022)
    try:
        zip_path = download.fetch(f"{url}/caltech-101.zip", tmp_path / "raw" / "caltech-101.zip", None)
        written = files.atomic_write_bytes(tmp_path / "out" / "result.json", b"{}")
        os.umask(0o027)
        private = files.atomic_write_bytes(tmp_path / "out" / "group.json", b"{}")
    finally:
        os.umask(old)
    assert (zip_path.stat().st_mode & 0o777, written.stat().st_mode & 0o777) == (0o644, 0o644)
    assert private.stat().st_mode & 0o777 == 0o640
