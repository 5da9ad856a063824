"""libpcap's own offline filter (pcap_offline_filter) through ctypes: what a BPF expression matches, packet by
packet, as tcpdump would decide it. The oracle for the ring index's skipping (tests/unit/test_ring_index.py)."""

from __future__ import annotations

import ctypes
import ctypes.util

from opentap.capture.bpf import DLT_EN10MB


class _Prog(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _Hdr(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("caplen", ctypes.c_uint32),
                ("len", ctypes.c_uint32)]


_lib = ctypes.CDLL(ctypes.util.find_library("pcap") or "libpcap.so.0.8")
_lib.pcap_open_dead.restype = ctypes.c_void_p
_lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
_lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Prog), ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
_lib.pcap_offline_filter.argtypes = [ctypes.POINTER(_Prog), ctypes.POINTER(_Hdr), ctypes.c_char_p]
_lib.pcap_geterr.restype = ctypes.c_char_p
_lib.pcap_geterr.argtypes = [ctypes.c_void_p]


class Matcher:
    def __init__(self, expression: str, linktype: int = DLT_EN10MB) -> None:
        self._handle = _lib.pcap_open_dead(linktype, 262144)
        self._prog = _Prog()
        if _lib.pcap_compile(self._handle, ctypes.byref(self._prog), expression.encode(), 1, 0xFFFFFFFF) != 0:
            raise ValueError(_lib.pcap_geterr(self._handle).decode())

    def __call__(self, frame: bytes, wire_len: int | None = None) -> bool:
        hdr = _Hdr(0, 0, len(frame), wire_len or len(frame))
        return _lib.pcap_offline_filter(ctypes.byref(self._prog), ctypes.byref(hdr), frame) != 0
