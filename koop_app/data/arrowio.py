"""Arrow IPC streams, zstd-compressed: the compact form of tables in the cache and id maps."""

from __future__ import annotations

import pyarrow as pa


def write_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def stream_ipc(data: bytes) -> pa.RecordBatchReader:
    """The batches of an IPC stream, decoded one at a time as they are read."""
    return pa.ipc.open_stream(pa.py_buffer(data))
