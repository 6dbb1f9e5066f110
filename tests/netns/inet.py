"""The Internet checksum (RFC 1071), shared by the helpers that build raw frames (pylb.py, synflood.py)."""
import struct


def fold(s):
    """Folds the carries of a ones'-complement sum back into 16 bits."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    return ~fold(sum(struct.unpack(f"!{len(data) // 2}H", data))) & 0xFFFF
