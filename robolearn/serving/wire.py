"""The openpi wire format: msgpack maps whose numpy arrays travel as tagged raw buffers.

An array is sent as ``{b"__ndarray__": True, b"data": bytes, b"dtype": str, b"shape": list}``
and a numpy scalar as ``{b"__npgeneric__": True, b"data": item, b"dtype": str}``; object,
void and char arrays are refused (they would need pickle).  This is the format
``openpi-client`` speaks, so its ``WebsocketClientPolicy`` can talk to our server.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_ARRAY, _SCALAR = b"__ndarray__", b"__npgeneric__"


def _encode(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in "VOc":
        raise TypeError(f"cannot send a numpy array of dtype {obj.dtype} (object/void/char "
                        "arrays would need pickle); convert it to a numeric or string array")
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {_ARRAY: True, b"data": arr.tobytes(), b"dtype": arr.dtype.str,
                b"shape": list(arr.shape)}
    if isinstance(obj, np.generic):
        return {_SCALAR: True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot send an object of type {type(obj).__name__}")


def _decode(obj: dict) -> Any:
    if _ARRAY in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in "VOc":
            raise ValueError(f"refusing an array of dtype {dtype} (object/void/char)")
        return np.frombuffer(obj[b"data"], dtype=dtype).reshape(obj[b"shape"])
    if _SCALAR in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_encode)


def unpackb(data: bytes) -> Any:
    return msgpack.unpackb(data, object_hook=_decode)
