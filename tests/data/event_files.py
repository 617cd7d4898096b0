"""Writers of tiny files in each neuromorphic dataset's own on-disk format (as tonic 1.7 reads them)."""

import struct
from pathlib import Path

import numpy as np


def random_events(rng, n, width, height, n_pol, t_max):
    """Return (x, y, t, p) int arrays, sorted by t, with distinct t so frame bins are unambiguous."""
    t = np.sort(rng.choice(t_max, size=n, replace=False))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, n_pol, n)


def write_nmnist_bin(path: Path, x, y, t, p) -> None:
    """N-MNIST: 5 bytes per event: x, y, p<<7 | t[22:16], t[15:8], t[7:0] (t in microseconds < 2**23)."""
    t = np.asarray(t, np.int64)
    assert t.max() < 2**23 and np.asarray(y).max() < 240  # y == 240 marks a timestamp overflow
    raw = np.zeros((len(t), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


def write_dvsgesture_npy(path: Path, x, y, t_ms, p) -> None:
    """DVSGesture (tonic's preprocessed copy): (N, 4) array of x, y, p, t in milliseconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack([x, y, p, t_ms], axis=1).astype(np.int64))


def write_shd_h5(path: Path, samples, labels) -> None:
    """SHD: spikes/times (vlen float seconds), spikes/units (vlen uint16), labels, extra/keys, extra/speaker."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        times = fh.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = fh.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (u, t_s) in enumerate(samples):
            times[i], units[i] = np.asarray(t_s, np.float32), np.asarray(u, np.uint16)
        fh["labels"] = np.asarray(labels, np.uint8)
        fh["extra/keys"] = np.array([f"word{k}".encode() for k in range(20)])
        fh["extra/speaker"] = np.zeros(len(samples), np.uint8)


# --- AEDAT 4.0 (CIFAR10-DVS) --------------------------------------------------------------------------------------
# Layout: magic line, uint32 length + IOHeader flatbuffer, then packets of (uint32 stream id, uint32 size,
# size-prefixed EventPacket flatbuffer). The flatbuffers are laid out by hand below: each buffer holds its root
# offset and file identifier, then a vtable, then the table, then the table's one vector or string, so every
# unsigned offset points forwards as flatbuffers requires.

AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
_AEDAT4_EVENT = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                          "offsets": [0, 8, 10, 12], "itemsize": 16})  # struct Event, 8-byte aligned


def _aedat4_description(width: int, height: int) -> bytes:
    """XML stream description: one event stream, id 0, of a width x height sensor."""
    return (
        '<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
        '<node name="0" path="/mainloop/Recorder/outInfo/0/">'
        '<attr key="compression" type="string">NONE</attr>'
        '<attr key="originalOutputName" type="string">events</attr>'
        '<attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>'
        '<attr key="typeIdentifier" type="string">EVTS</attr>'
        '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{int(width)}</attr><attr key="sizeY" type="int">{int(height)}</attr>'
        '<attr key="source" type="string">spikesmith-test</attr>'
        "</node></node></node></dv>"
    ).encode()


def _aedat4_ioheader(description: bytes) -> bytes:
    """IOHeader table {compression: int32 = 0 (none), file_data_position: int64 = -1, description: string}."""
    # 0: root offset -> 24 | 4: "IOHE" | 8: vtable (10 bytes) + pad | 24: table | 44: string
    vtable = struct.pack("<5H", 10, 20, 16, 8, 4)  # vtable size, table size; field offsets in the table
    table = struct.pack("<iIqi", 24 - 8, 44 - 28, -1, 0)  # soffset to vtable; string offset (from 28); fdp; comp
    buf = struct.pack("<I", 24) + b"IOHE" + vtable + b"\0" * 6 + table
    assert len(buf) == 44
    buf += struct.pack("<I", len(description)) + description + b"\0"
    return buf + b"\0" * (-len(buf) % 4)


def _aedat4_event_packet(events: np.ndarray) -> bytes:
    """Size-prefixed EventPacket table {elements: [Event]} with the Event structs 8-byte aligned."""
    # 0: size prefix | 4: root offset -> 20 (from 4) | 8: "EVTS" | 12: vtable (6 bytes) + pad | 20: table
    # | 28: vector length | 32: elements
    body = (struct.pack("<I", 16) + b"EVTS" + struct.pack("<3H", 6, 8, 4) + b"\0\0"
            + struct.pack("<iI", 20 - 12, 28 - 24) + struct.pack("<I", len(events)) + events.tobytes())
    return struct.pack("<I", len(body)) + body


def write_aedat4(path: Path, events, width: int = 128, height: int = 128, packet_size: int = 64) -> None:
    """AEDAT 4.0 file (uncompressed) with one event stream; ``events`` has fields t (us), x, y, p.

    The events are split into packets of at most ``packet_size`` events, as recorders do.
    """
    events = np.asarray(events)
    assert len(events) > 0, "tonic.io.read_aedat4 needs at least one event packet"
    packed = np.zeros(len(events), _AEDAT4_EVENT)
    packed["t"], packed["x"], packed["y"], packed["on"] = events["t"], events["x"], events["y"], events["p"]
    header = _aedat4_ioheader(_aedat4_description(width, height))
    parts = [AEDAT4_MAGIC, struct.pack("<I", len(header)), header]
    for start in range(0, len(packed), packet_size):
        packet = _aedat4_event_packet(packed[start:start + packet_size])
        parts += [struct.pack("<II", 0, len(packet)), packet]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(parts))
