"""Write a tiny MaxMind DB (format 2.0) file, so tests can read a city database.

The format (maxmind.github.io/MaxMind-DB): a binary search tree over the
address bits (24-bit records), 16 zero bytes, a data section of typed
values, then "\\xab\\xcd\\xefMaxMind.com" and a metadata map. IPv4 only,
networks must not overlap: enough for tests, nothing more.
"""

from __future__ import annotations

import ipaddress
import struct
import time
from pathlib import Path

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def _control(type_: int, size: int) -> bytes:
    extended = type_ > 7
    first = (0 if extended else type_) << 5
    extra = b""
    if size < 29:
        first |= size
    elif size < 285:
        first |= 29
        extra = bytes([size - 29])
    elif size < 65821:
        first |= 30
        extra = struct.pack(">H", size - 285)
    else:
        first |= 31
        extra = struct.pack(">I", size - 65821)[1:]
    return bytes([first]) + (bytes([type_ - 7]) if extended else b"") + extra


def _uint(type_: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _control(type_, len(raw)) + raw


class U16(int):
    """An unsigned 16-bit value (the metadata's record_size, ip_version, versions)."""


class U64(int):
    """An unsigned 64-bit value (the metadata's build_epoch)."""


def encode(value) -> bytes:
    """Encode a str, int (unsigned), list or dict in the MaxMind DB data format."""
    if isinstance(value, U16):
        return _uint(5, value)
    if isinstance(value, U64):
        return _uint(9, value)
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(2, len(raw)) + raw
    if isinstance(value, bool):
        return _control(14, int(value))
    if isinstance(value, int):
        return _uint(6 if value < 2**32 else 9, value)
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        body = b"".join(encode(str(k)) + encode(v) for k, v in value.items())
        return _control(7, len(value)) + body
    raise TypeError(type(value))


def write_city_database(path: Path, networks: dict[str, tuple[str, str | None]]) -> None:
    """Write `networks` ({"81.2.69.0/24": ("GB", "London")}) as a GeoIP2-City-like file."""
    data = b""
    root: list = [None, None]
    for text, (country, city) in networks.items():
        network = ipaddress.ip_network(text)
        record: dict = {"country": {"iso_code": country}}
        if city:
            record["city"] = {"names": {"en": city}}
        offset = len(data)
        data += encode(record)
        bits = int(network.network_address)
        node = root
        for depth in range(network.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == network.prefixlen - 1:
                node[bit] = ("data", offset)
            else:
                if not isinstance(node[bit], list):
                    node[bit] = [None, None]
                node = node[bit]

    nodes: list[list] = []

    def number(node: list) -> None:
        nodes.append(node)
        for child in node:
            if isinstance(child, list):
                number(child)

    number(root)
    index = {id(node): n for n, node in enumerate(nodes)}
    count = len(nodes)

    def value(child) -> int:
        if child is None:
            return count
        if isinstance(child, list):
            return index[id(child)]
        return count + 16 + child[1]

    tree = b"".join(
        value(left).to_bytes(3, "big") + value(right).to_bytes(3, "big") for left, right in nodes
    )
    metadata = {
        "node_count": count,
        "record_size": U16(24),
        "ip_version": U16(4),
        "database_type": "Keystone-Test-City",
        "languages": ["en"],
        "binary_format_major_version": U16(2),
        "binary_format_minor_version": U16(0),
        "build_epoch": U64(int(time.time())),
        "description": {"en": "Test data written by tests/mmdb.py"},
    }
    path.write_bytes(tree + b"\x00" * 16 + data + METADATA_MARKER + encode(metadata))
