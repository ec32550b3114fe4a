"""The in-memory two-engine harness lives in the library (`wansim.ike.loopback`)."""

from wansim.ike.loopback import Harness, Sent, Tamper

__all__ = ["Harness", "Sent", "Tamper"]
