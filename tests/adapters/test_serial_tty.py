"""adapters.serial_tty over a real pseudo-terminal."""
from __future__ import annotations

import os
import pty
import termios

import pytest
import trio

from adapters.serial_tty import TtyDevice


async def test_raw_8n1_stream_passes_bytes_unchanged_and_waits_on_an_idle_line(tmp_path):
    master, slave = pty.openpty()
    try:
        dev = TtyDevice(os.ttyname(slave), 9600)
        stream = await dev.open()
        async with stream:
            attrs = termios.tcgetattr(slave)
            assert attrs[4] == termios.B9600 and attrs[3] & termios.ECHO == 0
            # an idle line is not end of stream: the read waits until bytes come
            with trio.move_on_after(0.2) as idle:
                await stream.receive_some(64)
            assert idle.cancelled_caught
            os.write(master, b"\r\n\x00\xff$GS^30\r")      # no CR/LF translation, 8 bits
            got = b""
            with trio.fail_after(5):
                while len(got) < 10:
                    got += await stream.receive_some(64)
            assert got == b"\r\n\x00\xff$GS^30\r"
            await stream.send_all(b"\n\xfe")
            assert os.read(master, 16) == b"\n\xfe"
    finally:
        os.close(master)
        os.close(slave)


async def test_a_node_that_is_not_a_tty_or_missing_is_an_oserror(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    with pytest.raises(OSError, match="not a serial port"):
        await TtyDevice(str(plain), 115200).open()
    with pytest.raises(OSError):
        await TtyDevice(str(tmp_path / "missing"), 115200).open()
    with pytest.raises(ValueError, match="baudrate"):
        TtyDevice("/dev/ttyS1", 12345)


async def test_resolver_and_removal_watch_are_used():
    master, slave = pty.openpty()
    gone = trio.Event()
    try:
        dev = TtyDevice("usb:0403:6001", 115200, resolve=lambda: os.ttyname(slave), gone=gone.wait)
        stream = await dev.open()
        await stream.aclose()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dev.wait_gone)
            gone.set()
    finally:
        os.close(master)
        os.close(slave)
