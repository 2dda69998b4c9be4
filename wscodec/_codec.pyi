# Types of the compiled module built from src/wscodec/_codec.pyx. Its pure-Python twin,
# wscodec/codec.py, has the same surface.
from typing import Dict, List, Optional, Tuple, Union

from .protocol import Frame, Opcode

_BytesLike = Union[bytes, bytearray, memoryview]

NOGIL_THRESHOLD: int
NOGIL_THRESHOLDS: Dict[str, int]

def _set_nogil_thresholds(
    mask: Optional[int] = None, utf8: Optional[int] = None
) -> Dict[str, int]: ...

SIMD_LEVELS: Tuple[str, ...]
KERNELS: Dict[str, str]
MASK_STREAMING_FROM: int

def cpu_features() -> Dict[str, bool]: ...
def _use_simd(level: Optional[str] = None) -> Dict[str, str]: ...
def apply_mask(data: _BytesLike, mask: _BytesLike) -> bytes: ...
def apply_mask_into(
    buffer: Union[bytearray, memoryview], mask: _BytesLike, offset: int = 0
) -> None: ...
def validate_utf8(data: _BytesLike) -> bool: ...

# One call at a time: a concurrent or re-entrant call raises RuntimeError
# (Errors.CONCURRENT_USE), as does FrameParser's.
class Utf8Validator:
    def __init__(self) -> None: ...
    def feed(self, data: _BytesLike) -> bool: ...
    def finish(self) -> bool: ...
    def reset(self) -> None: ...

class FrameParser:
    mask_expected: bool
    allowed_rsv: int
    def __init__(
        self,
        *,
        mask_expected: bool,
        max_frame_size: Optional[int] = 1048576,
        allowed_rsv: int = 0,
    ) -> None: ...
    @property
    def max_frame_size(self) -> Optional[int]: ...
    @property
    def buffered(self) -> int: ...
    def pending_payload(self, offset: int = 0) -> Optional[Tuple[Opcode, bool, bytes]]: ...
    def feed(self, data: _BytesLike) -> List[Frame]: ...

def encode_frame(
    opcode: int,
    payload: _BytesLike,
    *,
    fin: bool = True,
    mask: Optional[_BytesLike] = None,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
) -> bytes: ...
