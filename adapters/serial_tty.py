"""Adapter: a serial device (tty) as a raw 8N1 trio byte stream (ports.hardware.SerialDevice).

The node is opened non-blocking, without becoming the controlling terminal, and put
in raw mode: 8 data bits, no parity, one stop bit, no flow control, no echo, no
line editing, at the configured speed. Reads go through trio's FdStream.

Where the node comes from is injected: a fixed path, or a resolver (bootstrap/ wires
the udev adapter's for `usb:VVVV:PPPP[:SERIAL]` names) with its removal watch.
"""
from __future__ import annotations

import os
import termios
from collections.abc import Awaitable, Callable

import trio

BAUDRATES = {
    1200: termios.B1200, 2400: termios.B2400, 4800: termios.B4800, 9600: termios.B9600,
    19200: termios.B19200, 38400: termios.B38400, 57600: termios.B57600,
    115200: termios.B115200, 230400: termios.B230400,
}


def make_raw(fd: int, baudrate: int) -> None:
    """Raw 8N1 at `baudrate`, no flow control; raises termios.error if `fd` is not a tty."""
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
               | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF | termios.IXANY | termios.INPCK)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | getattr(termios, "CRTSCTS", 0))
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    cc = list(cc)
    # VMIN 1: with O_NONBLOCK an idle line reads as EAGAIN (trio waits), never as 0 bytes (EOF)
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    speed = BAUDRATES[baudrate]
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
    termios.tcflush(fd, termios.TCIOFLUSH)


class TtyDevice:
    """One serial device. `label` is the configured name; `resolve` turns it into a node
    path when it is not one (USB identity); `gone` returns when the device is removed."""

    def __init__(self, label: str, baudrate: int, *,
                 resolve: Callable[[], str] | None = None,
                 gone: Callable[[], Awaitable[None]] | None = None) -> None:
        if baudrate not in BAUDRATES:
            raise ValueError(f"unsupported baudrate {baudrate}")
        self.label = label
        self.baudrate = baudrate
        self._resolve = resolve
        self._gone = gone

    async def open(self) -> trio.abc.Stream:
        path = self._resolve() if self._resolve is not None else self.label
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            make_raw(fd, self.baudrate)
        except termios.error as exc:
            os.close(fd)
            raise OSError(f"{path}: not a serial port ({exc.args[-1]})") from None
        return trio.lowlevel.FdStream(fd)

    async def wait_gone(self) -> None:
        if self._gone is None:
            await trio.sleep_forever()
        await self._gone()
