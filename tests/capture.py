"""Frames on a link, captured with a raw packet socket (no capture tool needed), and what
they carry."""

from __future__ import annotations

import socket
import threading

__all__ = ["FrameCapture", "udp_ports"]


class FrameCapture:
    """Every frame crossing the link ``name`` (a raw packet socket), gathered in a thread."""

    def __init__(self, name: str) -> None:
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self._socket.bind((name, 0))
        self._socket.settimeout(0.2)
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.frames.append(self._socket.recv(65535))
            except TimeoutError:
                continue

    def stop(self) -> list[bytes]:
        self._stop.set()
        self._thread.join()
        self._socket.close()
        return self.frames


def udp_ports(frames: list[bytes]) -> set[int]:
    """Destination ports of the IPv4 UDP datagrams among ``frames``."""
    ports = set()
    for frame in frames:
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        header = (frame[14] & 0x0F) * 4
        ports.add(int.from_bytes(frame[14 + header + 2 : 14 + header + 4], "big"))
    return ports
