#!/usr/bin/env python3
"""Writes the seed corpus for the cargo-fuzz targets: RFC-style vectors and
the inputs that broke zettabgp 0.6 (AS_PATH with one trailing byte, short
MP_REACH next hops, overrunning lengths...). Run from bgp/fuzz:
    python3 make_seeds.py"""
import os, struct

def msg(ty, body):
    return b"\xff" * 16 + struct.pack(">HB", 19 + len(body), ty) + body

def attr(flags, t, v):
    if flags & 0x10:
        return bytes([flags, t]) + struct.pack(">H", len(v)) + v
    return bytes([flags, t, len(v)]) + v

def update_body(w, a, n):
    return struct.pack(">H", len(w)) + w + struct.pack(">H", len(a)) + a + n

def path4(asns):
    return attr(0x40, 2, bytes([2, len(asns)]) + b"".join(struct.pack(">I", x) for x in asns))

def path2(asns):
    return attr(0x40, 2, bytes([2, len(asns)]) + b"".join(struct.pack(">H", x) for x in asns))

ORIGIN = attr(0x40, 1, b"\x00")
NH = attr(0x40, 3, bytes([192, 0, 2, 1]))
BASIC = ORIGIN + path4([65001, 65002]) + NH
NLRI = bytes([24, 198, 51, 100, 16, 10, 1])
MP6 = attr(0x80, 14, bytes([0, 2, 1, 32]) + bytes([0x20, 1, 0xd, 0xb8] + [0] * 11 + [1])
           + bytes([0xfe, 0x80] + [0] * 13 + [1]) + b"\x00" + bytes([32, 0x20, 1, 0xd, 0xb8]))

# (selector byte, UPDATE body); selector 1 = 4-octet AS, 0 = 2-octet, 5 = 4-octet iBGP.
updates = [
    (1, update_body(b"\x10\x0a\x09", BASIC, NLRI)),
    (1, update_body(b"", MP6 + ORIGIN + path4([65001]), b"")),
    (1, update_body(b"", attr(0x80, 15, bytes([0, 2, 1, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 9])), b"")),
    (1, update_body(b"", b"", b"")),
    (1, update_body(b"", attr(0x80, 15, bytes([0, 2, 1])), b"")),
    (5, update_body(b"", BASIC + attr(0x80, 4, b"\0\0\0\5") + attr(0x40, 5, b"\0\0\0\x64") + attr(0x40, 6, b"")
        + attr(0xc0, 7, b"\0\0\0\1\xc0\0\2\1") + attr(0xc0, 8, b"\0\1\0\2") + attr(0x80, 9, b"\1\1\1\1")
        + attr(0x80, 10, b"\2\2\2\2") + attr(0xc0, 16, bytes(8)) + attr(0xc0, 32, bytes(12))
        + attr(0xe0, 99, b"\1\2\3"), NLRI)),
    (0, update_body(b"", ORIGIN + path2([65001, 23456]) + NH + attr(0xc0, 7, b"\x5b\xa0\x0a\0\0\1")
        + attr(0xc0, 18, b"\xfa\x56\xea\x01\x0a\0\0\1") + attr(0xc0, 17, bytes([2, 1]) + struct.pack(">I", 4200000001)), NLRI)),
    # zettabgp killers and friends
    (1, update_body(b"", ORIGIN + attr(0x40, 2, bytes([2, 1, 0, 0, 0xfd, 0xe9, 2])) + NH, NLRI)),
    (1, update_body(b"", ORIGIN + attr(0x40, 2, b"\x02") + NH, NLRI)),
    (0, update_body(b"", ORIGIN + attr(0x40, 2, bytes([2, 1, 0, 1, 2])) + NH, NLRI)),
    (1, update_body(b"", ORIGIN + attr(0x40, 2, b"\x02\x00") + NH, NLRI)),
    (1, update_body(b"", ORIGIN + attr(0x40, 2, b"\x02\xff") + NH, NLRI)),
    (1, update_body(b"", bytes([0x40, 2, 255]), NLRI)),
    (1, update_body(b"", bytes([0x50, 2, 0xff, 0xff]), NLRI)),
    (1, update_body(b"", attr(0x80, 14, bytes([0, 2, 1, 255])), b"")),
    (1, update_body(b"", attr(0x80, 14, bytes([0, 2, 1, 32, 0])), b"")),
    (1, update_body(b"", attr(0x80, 14, bytes([0, 1, 1, 4, 1, 2, 3, 4, 0, 33, 1, 2, 3, 4, 5])), b"")),
    (1, update_body(b"", attr(0x80, 15, bytes([0, 2])), b"")),
    (1, update_body(b"", attr(0x80, 15, bytes([0, 2, 1, 200])), b"")),
    (1, b"\x00\xff"),
    (1, update_body(b"", b"", b"\x00")),
    (1, update_body(b"", b"", b"\xff\x01")),
    (1, update_body(b"", BASIC + bytes([0xc0, 8, 40, 0, 0, 0, 1]), NLRI)),
    (1, update_body(b"", BASIC + attr(0x40, 99, b"\1\2"), NLRI)),
    (1, update_body(b"", BASIC + attr(0x80, 15, b"\0\2\1") + attr(0x80, 15, b"\0\2\1"), b"")),
]

opens = [
    bytes([4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 26, 2, 24, 1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xfd, 0xe9,
           64, 6, 0xc0, 120, 0, 1, 1, 0x80, 6, 0]),
    bytes([4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255, 0, 4, 2, 0, 1, 70]),
    bytes([4, 0, 1, 0, 90, 1, 1, 1, 1, 255, 255, 0, 0]),
    bytes([4, 0, 1, 0, 90, 1, 1, 1, 1, 2, 2, 200]),
    bytes([4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 64, 1]),
    bytes([3, 0, 1, 0, 90, 1, 1, 1, 1, 0]),
    bytes([4, 0, 1, 0, 1, 1, 1, 1, 1, 0]),
]

others = [msg(3, b"\x06\x02bye"), msg(4, b""), msg(5, b"\0\1\0\1"), msg(5, b"\0\2\1\1"), msg(3, b"\x06"), msg(9, b"")]

def write(target, i, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
        f.write(data)

for i, (sel, body) in enumerate(updates):
    write("update", i, bytes([sel]) + body)
    write("message", i, bytes([sel]) + msg(2, body))
    write("frame", i, msg(2, body))
for i, body in enumerate(opens):
    write("open", i, body)
    write("message", 100 + i, b"\x00" + msg(1, body))
    write("frame", 100 + i, msg(1, body))
for i, m in enumerate(others):
    write("message", 200 + i, b"\x00" + m)
    write("frame", 200 + i, m)
for i in range(8):
    write("encode_round_trip", i, bytes((i * 37 + k * 11) % 256 for k in range(64 + i * 16)))
