"""The only two places where the MQTT adapter reaches into paho's private state.

paho-mqtt 2.2 has no public way to do either, and both pay for themselves in a
drain (docs/PERFORMANCE.md, "batched PUBACKs" and "read-ahead socket"):

* **Read-ahead.** paho reads each packet with three or four ``recv`` calls on
  ``Client._sock`` (the type byte, the length a byte at a time, the rest). Its
  public ``on_socket_open`` hands us the socket but no way to read it for paho.
  ``install_read_ahead`` puts a wrapper that reads 64 KiB at a time in its place.
* **Batched PUBACKs.** Public ``Client.ack()`` writes one packet per message, each
  with a ``send`` of its own plus a wake-up of the network loop. MQTT has no batch
  acknowledgement, but TCP does not care where packets start: ``queue_pubacks``
  hands paho's write queue (``Client._packet_queue``) all the four-byte QoS 1
  PUBACKs of a commit as one buffer, written with one ``send``.

Each function says whether it could do its job; when paho changes under us, the
caller falls back to the public API (slower, still correct) and ``missing()``
names what is gone, which the client logs once as ``paho_private_api_missing``.
``tests/integration/test_paho_private.py`` fails loudly on such a change, against a
real broker, so an upgrade of paho cannot slip past CI with the shims turned off.
"""

import inspect
import struct
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MessageType

_PUBACK = int(MessageType.PUBACK)
_QUEUE_PARAMETERS = ("command", "packet", "mid", "qos")


class ReadAhead:
    """paho's socket, read in large chunks.

    Reading up to 64 KiB at once and serving paho from that cuts the ``recv``
    calls (each of which lets go of the GIL while the core thread wants it) to
    about one per burst. ``pending()`` is how paho learns of buffered bytes (it
    asks TLS sockets the same), so its loop reads them without waiting in select().
    """

    CHUNK = 65536

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._data):
            data = self._sock.recv(max(size, self.CHUNK))
            if len(data) <= size:
                return bytes(data)
            self._data, self._pos = data, 0
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._data) - self._pos + int(inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def install_read_ahead(client: paho.Client, sock: Any) -> bool:
    """From ``on_socket_open``: let paho read ``sock`` through a ``ReadAhead``."""
    if getattr(client, "_sock", None) is not sock:
        return False
    client._sock = ReadAhead(sock)
    return True


def queue_pubacks(client: paho.Client, mids: Sequence[int]) -> bool:
    """Queue QoS 1 PUBACKs (reason 0: four bytes each, as paho builds them) as one write."""
    queue = getattr(client, "_packet_queue", None)
    if queue is None:
        return False
    queue(_PUBACK, b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids), 0, 0)
    return True


def missing(client: paho.Client) -> list[str]:
    """The private names this module relies on that this paho does not have."""
    gone = []
    if not hasattr(client, "_sock"):
        gone.append("Client._sock")
    queue = getattr(client, "_packet_queue", None)
    if queue is None:
        gone.append("Client._packet_queue")
    elif tuple(inspect.signature(queue).parameters)[:4] != _QUEUE_PARAMETERS:
        gone.append("Client._packet_queue(command, packet, mid, qos)")
    return gone
