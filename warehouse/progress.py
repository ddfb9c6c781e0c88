"""What the maintenance commands share: their progress line, sizes and count options."""

from __future__ import annotations

import argparse

from django.core.management.base import OutputWrapper


def positive_int(value: str) -> int:
    """Parse a command-line count of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(size: float) -> str:
    """``size`` bytes as every command prints a size: "6 bytes", "3.3 MiB" (1 MiB = 1024² bytes)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size:.0f} bytes"
    for unit in _BINARY_UNITS:
        size /= 1024
        if round(size, 1) < 1024 or unit == _BINARY_UNITS[-1]:
            break
    return f"{size:.1f} {unit}"


def _plain(text: str) -> str:
    # Progress is no error: not in the ERROR style Django gives stderr on a terminal.
    return text


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, else a line every ``every``.

    Off a terminal (cron, CI logs) a line per step would drown the log, so it
    prints one each time the count crosses a multiple of ``every``, and the
    last count at the end.
    """

    def __init__(self, stream: OutputWrapper, *, every: int, enabled: bool = True) -> None:
        self.stream, self.every, self.enabled = stream, every, enabled
        self.terminal = stream.isatty()
        self.count = 0
        self._line = ""
        self._shown = False  # whether the latest line is on the screen
        self._showing = False  # whether the terminal's cursor ends a progress line

    def advance(self, line: str, steps: int = 1) -> None:
        """Count ``steps`` more, described by ``line``."""
        crossed = (self.count + steps) // self.every > self.count // self.every
        self.count += steps
        self._line, self._shown = line, False
        if self.terminal:
            self._draw(f"\r\x1b[K{line}")
            self._shown = self._showing = True
        elif crossed:
            self._draw(f"{line}\n")
            self._shown = True

    def clear(self) -> None:
        """Erase the line, so that a message written next starts at the margin."""
        if self._showing:
            self._draw("\r\x1b[K")
            self._showing = self._shown = False

    def finish(self) -> None:
        """Leave the last count on the screen."""
        if self._showing:
            self._draw("\n")
            self._showing = False
        elif self._line and not self._shown:
            self._draw(f"{self._line}\n")
        self._shown = True

    def _draw(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text, style_func=_plain, ending="")
            self.stream.flush()
