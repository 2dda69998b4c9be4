"""Every comparison of issue 7, as rows of (section, case, size, contender).

Throughput is bytes per second, also given as a ratio to memcpy of the same
number of bytes measured in the same run (1.0x: as fast as copying the data
once). Parsing and encoding are also given in frames per second.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from wscodec import _backend
from wscodec.protocol import Opcode

KEY = b"\x37\xfa\x21\x3d"
# Looked up once: an Enum member lookup would add ~50 ns to every timed call.
BINARY = Opcode.BINARY
CHUNK = 65536


class Case(NamedTuple):
    section: str
    case: str
    size: int  # payload or input size the case is named after
    contender: str
    nbytes: int  # bytes processed per call
    frames: int  # frames per call (0: not a frame benchmark)
    call: Callable[[], object]


def human(size: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def text(kind: str, size: int) -> bytes:
    """Valid UTF-8 of about ``size`` bytes, cut back to a character boundary."""
    samples = {
        "ascii": "The quick brown fox jumps over the lazy dog. ",
        "latin": "Le c\u0153ur d\u00e9\u00e7u mais l'\u00e2me plut\u00f4t na\u00efve, ",
        "cjk": "\u4eba\u4eba\u751f\u800c\u81ea\u7531\uff0c"
        "\u5728\u5c0a\u4e25\u548c\u6743\u5229\u4e0a",
        "emoji": "\U0001f600\U0001f680\U0001f308\u2764\ufe0f ok ",
    }
    data = (samples[kind] * (size // len(samples[kind].encode()) + 2)).encode()[:size]
    while True:
        try:
            data.decode()
            return data
        except UnicodeDecodeError:
            data = data[:-1]


def twins() -> List[Tuple[str, Any]]:
    result: List[Tuple[str, Any]] = []
    if _backend.compiled_codec is not None:
        result.append(("wscodec (cython)", _backend.compiled_codec))
    result.append(("wscodec (python)", _backend.python_codec))
    return result


def mask_cases(peers: List[Tuple[str, Dict[str, Any]]], sizes: List[int]) -> Iterator[Case]:
    for size in sizes:
        data = os.urandom(size)
        source = bytearray(data)
        yield Case(
            "mask", "new bytes", size, "bytes(bytearray) copy", size, 0, lambda s=source: bytes(s)
        )
        for name, codec in twins():
            yield Case(
                "mask",
                "new bytes",
                size,
                name,
                size,
                0,
                lambda c=codec, d=data: c.apply_mask(d, KEY),
            )
        for name, adapter in peers:
            if "mask_new" in adapter:
                fn = adapter["mask_new"]
                yield Case("mask", "new bytes", size, name, size, 0, lambda f=fn, d=data: f(d, KEY))
    for size in sizes:
        buffer = bytearray(os.urandom(size))
        for name, codec in twins():
            yield Case(
                "mask",
                "in place",
                size,
                name,
                size,
                0,
                lambda c=codec, b=buffer: c.apply_mask_into(b, KEY),
            )
        for name, adapter in peers:
            if "mask_into" in adapter:
                fn = adapter["mask_into"]
                yield Case(
                    "mask", "in place", size, name, size, 0, lambda f=fn, b=buffer: f(b, KEY)
                )


def utf8_cases(peers: List[Tuple[str, Dict[str, Any]]], sizes: List[int]) -> Iterator[Case]:
    for size in sizes:
        for kind in ("ascii", "latin", "cjk", "emoji"):
            sample = text(kind, size)
            n = len(sample)
            yield Case("utf8", kind, size, "bytes.decode", n, 0, lambda s=sample: s.decode("utf-8"))
            for name, codec in twins():
                yield Case(
                    "utf8", kind, size, name, n, 0, lambda c=codec, s=sample: c.validate_utf8(s)
                )
            for name, adapter in peers:
                if "validate" in adapter:
                    fn = adapter["validate"]
                    yield Case("utf8", kind, size, name, n, 0, lambda f=fn, s=sample: f(s))
    # Incremental validation: the same 1 MiB fed in 64 KiB chunks, next to one-shot.
    size = max(sizes)
    for kind in ("ascii", "cjk"):
        sample = text(kind, size)
        chunks = [sample[i : i + CHUNK] for i in range(0, len(sample), CHUNK)]
        for name, codec in twins():

            def incremental(c: Any = codec, pieces: List[bytes] = chunks) -> bool:
                validator = c.Utf8Validator()
                for piece in pieces:
                    validator.feed(piece)
                return bool(validator.finish())

            yield Case("utf8", f"{kind}, 64 KiB chunks", size, name, len(sample), 0, incremental)


def parse_cases(peers: List[Tuple[str, Dict[str, Any]]], sizes: List[int]) -> Iterator[Case]:
    python = _backend.python_codec
    for size in sizes:
        frame = python.encode_frame(Opcode.BINARY, os.urandom(size), mask=KEY)
        count = max(1, (4 * CHUNK) // len(frame))
        stream = frame * count
        chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
        contenders: List[Tuple[str, Callable[[], Callable[[bytes], object]]]] = []
        for name, codec in twins():
            contenders.append(
                (name, lambda c=codec: c.FrameParser(mask_expected=True, max_frame_size=None).feed)
            )
        for name, adapter in peers:
            if "parser" in adapter:
                contenders.append((name, adapter["parser"]))
        for name, factory in contenders:

            def parse(
                make: Callable[[], Callable[[bytes], object]] = factory,
                pieces: List[bytes] = chunks,
            ) -> None:
                feed = make()
                for piece in pieces:
                    feed(piece)

            yield Case(
                "parse", "masked frames, 64 KiB chunks", size, name, len(stream), count, parse
            )


def encode_cases(peers: List[Tuple[str, Dict[str, Any]]], sizes: List[int]) -> Iterator[Case]:
    for size in sizes:
        payload = os.urandom(size)
        for name, codec in twins():
            yield Case(
                "encode",
                "server frame",
                size,
                name,
                size,
                1,
                lambda c=codec, p=payload, op=BINARY: c.encode_frame(op, p),
            )
        for name, adapter in peers:
            if "encode" in adapter:
                fn = adapter["encode"]
                yield Case(
                    "encode", "server frame", size, name, size, 1, lambda f=fn, p=payload: f(p)
                )
        for name, codec in twins():
            yield Case(
                "encode",
                "client frame (masked)",
                size,
                name,
                size,
                1,
                lambda c=codec, p=payload, op=BINARY: c.encode_frame(op, p, mask=KEY),
            )


SECTIONS = {
    "mask": (mask_cases, [16, 1024, 65536, 2**20, 16 * 2**20], [16, 1024, 2**20]),
    "utf8": (utf8_cases, [16, 2**20], [16, 2**20]),
    "parse": (parse_cases, [16, 1024, 2**20], [16, 1024, 2**20]),
    "encode": (encode_cases, [16, 1024], [16, 1024]),
}


def all_cases(
    peers: List[Tuple[str, Dict[str, Any]]], quick: bool, only: Optional[List[str]] = None
) -> List[Case]:
    cases: List[Case] = []
    for section, (generate, full_sizes, quick_sizes) in SECTIONS.items():
        if only and section not in only:
            continue
        cases.extend(generate(peers, quick_sizes if quick else full_sizes))
    return cases
