"""TFRecord files (TensorFlow's record format), read without TensorFlow: YouTube-8M
distributes its videos' pseudo ids in them (``pico.data.yt8m``).

Each record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
little endian, with masked_crc(x) = ((crc32c(x) >> 15) | (crc32c(x) << 17)) + 0xa282ead8 (mod
2^32). A video-level record's data is a ``tf.train.Example`` whose feature ``id`` is a bytes list
of one 4-character pseudo id (frame-level files hold ``tf.train.SequenceExample`` records with
the same ``id`` in their context). Both are read here with a minimal protobuf decoder: the only
fields used are Example.features = 1 / SequenceExample.context = 1, Features.feature = 1 (a map
entry: key = 1, value = 2), Feature.bytes_list = 1, BytesList.value = 1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c

#: The name suffixes of TFRecord files.
SUFFIXES = (".tfrecord", ".tfrecords")


def masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C rotated right by 15 bits plus 0xa282ead8 (mod 2^32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path: str | Path) -> Iterator[bytes]:
    """The records of a TFRecord file, each checked against its two checksums; a truncated or
    damaged file, or one that is not a TFRecord, is a ValueError naming it and the record."""
    with open(path, "rb") as f:
        index = 0
        while header := f.read(12):
            where = f"{path}: record {index} (byte {f.tell() - len(header)})"
            if len(header) < 12:
                raise ValueError(f"{where}: truncated header ({len(header)} of 12 bytes)")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{where}: bad length checksum (not a TFRecord file, or damaged)")
            data, footer = f.read(length), f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{where}: truncated ({len(data)} of {length} bytes)")
            if masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{where}: bad data checksum (damaged)")
            yield data
            index += 1


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of a protobuf message: bytes for length-delimited
    fields, ints for varints; fixed-width fields are skipped over as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _first(buf: bytes, number: int) -> bytes | None:
    return next((v for n, w, v in _fields(buf) if n == number and w == 2), None)


def example_id(record: bytes, feature: str = "id") -> str:
    """The ``feature`` bytes value of a ``tf.train.Example`` (or a SequenceExample's context)."""
    features = _first(record, 1)  # Example.features, or SequenceExample.context
    for n, w, entry in _fields(features or b""):
        if n == 1 and w == 2 and _first(entry, 1) == feature.encode():
            values = _first(_first(entry, 2) or b"", 1)  # Feature.bytes_list
            if values is None:
                raise ValueError(f"feature {feature!r} is not a bytes list")
            return (_first(values, 1) or b"").decode()
    raise ValueError(f"no feature {feature!r}")
