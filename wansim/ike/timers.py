"""Retransmission schedule arithmetic (strongSwan `task_manager_v2.c` semantics).

A request is sent at offset 0, then retransmitted ``tries`` times; the wait after
transmission n (n = 0, 1, ...) is ``timeout * base**n``. After the last retransmission
the sender waits one more such interval and then gives up on the IKE SA. With
strongSwan's defaults (4 s, 1.8, 5 tries) the sends happen at 0, 4, 11.2, 24.16,
47.49 and 89.48 s and the give-up at 165.06 s (digest §6.2). Pure functions: the
engine keeps the first-send instant and the attempt count and asks these for deadlines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class RetransmitSchedule:
    """When an unanswered request is sent again, and when the sender gives up."""

    timeout_s: float = 4.0
    base: float = 1.8
    tries: int = 5

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.base < 1.0 or self.tries < 0:
            raise ValueError(
                "retransmission needs timeout_s > 0, base >= 1 and tries >= 0, got "
                f"{self.timeout_s}, {self.base}, {self.tries}"
            )

    def interval_s(self, transmission: int) -> float:
        """Wait after transmission number ``transmission`` (0 = the first send)."""
        return self.timeout_s * self.base**transmission

    def send_offsets_s(self) -> tuple[float, ...]:
        """Offsets from the first send of every transmission, the first one included."""
        offsets = [0.0]
        for n in range(self.tries):
            offsets.append(offsets[-1] + self.interval_s(n))
        return tuple(offsets)

    def give_up_offset_s(self) -> float:
        """Offset from the first send at which the request is abandoned."""
        return sum(self.interval_s(n) for n in range(self.tries + 1))

    def deadline_at(self, first_sent_at: float, transmissions: int) -> float:
        """Next deadline after ``transmissions`` sends (1 = only the first one so far).

        Before the last try it is the next retransmission; after it, the give-up.
        """
        if transmissions < 1:
            raise ValueError("a request has been sent at least once before it has a deadline")
        offsets = self._deadline_offsets
        if transmissions < len(offsets):
            return first_sent_at + offsets[transmissions]
        return first_sent_at + sum(self.interval_s(n) for n in range(transmissions))

    @functools.cached_property
    def _deadline_offsets(self) -> tuple[float, ...]:
        # Engines ask for deadlines after every message: sum each prefix once (the same
        # sums, in the same order, as the formula above).
        return tuple(
            sum(self.interval_s(n) for n in range(transmissions))
            for transmissions in range(self.tries + 2)
        )

    def exhausted(self, transmissions: int) -> bool:
        """True when no retransmission is left after ``transmissions`` sends."""
        return transmissions > self.tries
