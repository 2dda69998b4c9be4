"""UTF-8 test vectors: valid text and every class of invalid sequence (RFC 3629)."""

from __future__ import annotations

VALID = {
    "empty": b"",
    "ascii": b"Hello, world! " * 5,
    "two-byte": "caf\u00e9 \u00fcber \u00f1 \u00df".encode(),
    "three-byte": "\u20ac \u4e2d\u6587 \u65e5\u672c\u8a9e".encode(),
    "four-byte": "\U0001f600 \U0001f680 \U00010348".encode(),
    "boundaries": "\u0000\u007f\u0080\u07ff\u0800\uffff\U00010000\U0010ffff".encode(),
    "around-surrogates": "\ud7ff\ue000".encode(),
    "bom": "\ufeffbom".encode(),
    "noncharacters": "\ufffe\uffff\U0001fffe".encode(),
    "autobahn-hello": bytes.fromhex("cebae1bdb9cf83cebcceb5"),
    "mixed-long": ("ascii \u00e9\u20ac\U0001f600" * 100).encode(),
}

INVALID = {
    "stray-continuation": b"\x80",
    "stray-continuation-after-ascii": b"abc\xbf",
    "continuation-run": b"\x80\x81\x82\x83",
    "lone-lead-2": b"\xc3",
    "lone-lead-3": b"\xe2\x82",
    "lone-lead-4": b"\xf0\x9f\x98",
    "truncated-then-ascii": b"\xe2\x82a",
    "overlong-2-c0": b"\xc0\xaf",
    "overlong-2-c1": b"\xc1\xbf",
    "overlong-3": b"\xe0\x80\xaf",
    "overlong-3-max": b"\xe0\x9f\xbf",
    "overlong-4": b"\xf0\x80\x80\xaf",
    "overlong-4-max": b"\xf0\x8f\xbf\xbf",
    "surrogate-high": b"\xed\xa0\x80",
    "surrogate-low": b"\xed\xbf\xbf",
    "surrogate-pair-cesu": b"\xed\xa0\xbd\xed\xb8\x80",
    "above-max-f4-90": b"\xf4\x90\x80\x80",
    "above-max-f5": b"\xf5\x80\x80\x80",
    "invalid-f8": b"\xf8\x88\x80\x80\x80",
    "invalid-fc": b"\xfc\x84\x80\x80\x80\x80",
    "invalid-fe": b"\xfe",
    "invalid-ff": b"\xff",
    "lead-then-lead": b"\xc3\xc3",
    "missing-continuation-4": b"\xf0\x9f\x98a",
    "autobahn-6.4.1": bytes.fromhex("cebae1bdb9cf83cebcceb5f4908080656469746564"),
    "valid-then-bad": "\u00e9\u20ac".encode() + b"\xed\xa0\x80",
}


def first_invalid_position(data: bytes) -> int | None:
    """Index of the byte at which a fail-fast validator must reject, or None.

    Taken from CPython's incremental decoder fed one byte at a time, which
    raises at the first byte that cannot continue any valid text, except
    that it waits on ED A0..BF (a surrogate in the making) for a third byte.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    for index in range(len(data)):
        try:
            decoder.decode(data[index : index + 1], False)
        except UnicodeDecodeError:
            return index
        pending = decoder.getstate()[0]
        if pending[:1] == b"\xed" and len(pending) == 2 and pending[1] >= 0xA0:
            return index
    return None
