"""Produces a message whose header key is not UTF-8, which confluent-kafka's Python API cannot send
(it turns a bytes key into its repr): straight through librdkafka, the library it bundles."""

from __future__ import annotations

import ctypes
from pathlib import Path

import confluent_kafka

MSG_F_COPY = 0x2
VTYPE_TOPIC, VTYPE_VALUE, VTYPE_KEY, VTYPE_MSGFLAGS, VTYPE_HEADERS = 1, 4, 5, 7, 10


class _Mem(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _Union(ctypes.Union):
    _fields_ = [
        ("cstr", ctypes.c_char_p),
        ("i", ctypes.c_int),
        ("mem", _Mem),
        ("headers", ctypes.c_void_p),
        ("_pad", ctypes.c_char * 64),
    ]


class _Vu(ctypes.Structure):
    _fields_ = [("vtype", ctypes.c_int), ("u", _Union)]


def _library() -> ctypes.CDLL:
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    library = ctypes.CDLL(str(found[0])) if found else ctypes.CDLL("librdkafka.so.1")
    library.rd_kafka_conf_new.restype = ctypes.c_void_p
    library.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    library.rd_kafka_new.restype = ctypes.c_void_p
    library.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    library.rd_kafka_headers_new.restype = ctypes.c_void_p
    library.rd_kafka_headers_new.argtypes = [ctypes.c_size_t]
    library.rd_kafka_header_add.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_ssize_t,
        ctypes.c_char_p,
        ctypes.c_ssize_t,
    ]
    library.rd_kafka_produceva.restype = ctypes.c_void_p
    library.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Vu), ctypes.c_size_t]
    library.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    library.rd_kafka_outq_len.argtypes = [ctypes.c_void_p]
    library.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    library.rd_kafka_error_string.restype = ctypes.c_char_p
    library.rd_kafka_error_string.argtypes = [ctypes.c_void_p]
    return library


def produce_raw(
    bootstrap: str, topic: str, key: bytes, value: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    lib = _library()
    errors = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    if lib.rd_kafka_conf_set(conf, b"bootstrap.servers", bootstrap.encode(), errors, 512) != 0:
        raise RuntimeError(errors.value.decode())
    handle = lib.rd_kafka_new(0, conf, errors, 512)
    if not handle:
        raise RuntimeError(errors.value.decode())
    try:
        header_list = lib.rd_kafka_headers_new(len(headers))
        for name, content in headers:
            lib.rd_kafka_header_add(header_list, name, len(name), content, len(content))
        key_buffer, value_buffer = (
            ctypes.create_string_buffer(key, len(key)),
            ctypes.create_string_buffer(value, len(value)),
        )
        vus = (_Vu * 5)()
        vus[0].vtype, vus[0].u.cstr = VTYPE_TOPIC, topic.encode()
        vus[1].vtype, vus[1].u.mem = VTYPE_KEY, _Mem(ctypes.cast(key_buffer, ctypes.c_void_p), len(key))
        vus[2].vtype, vus[2].u.mem = VTYPE_VALUE, _Mem(ctypes.cast(value_buffer, ctypes.c_void_p), len(value))
        vus[3].vtype, vus[3].u.i = VTYPE_MSGFLAGS, MSG_F_COPY
        vus[4].vtype, vus[4].u.headers = VTYPE_HEADERS, header_list
        error = lib.rd_kafka_produceva(handle, vus, 5)
        if error:
            raise RuntimeError(lib.rd_kafka_error_string(error).decode())
        lib.rd_kafka_flush(handle, 30_000)
        if lib.rd_kafka_outq_len(handle) != 0:
            raise RuntimeError("the broker did not acknowledge the raw message")
    finally:
        lib.rd_kafka_destroy(handle)
