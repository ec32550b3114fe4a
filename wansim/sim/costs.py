"""CPU cost table: the simulated seconds a POP core spends on each piece of IKE work.

A run is reproducible because simulated CPU time comes from this table, not from the wall
clock, while the table itself comes from measurement:

* ``operations_s[token][operation]`` — one public-key operation, keyed as the crypto layer
  names it (``"x25519"``, ``"mlkem768"``, ``"ecdsa-p384"`` × ``"initiate"`` / ``"respond"`` /
  ``"finish"`` / ``"sign"`` / ``"verify"``). ``wansim calibrate`` times the real operations on
  this machine with the backend in use (see :mod:`wansim.sim.calibration`).
* ``exchange_s[exchange]`` — everything else a real daemon does per exchange it handles
  (parse, SK protect/unprotect, prf+, state, SA install, logging), per IKE exchange type.
  Public-key crypto is a minority of a real responder's work (ARCHITECTURE.md, "Modelling
  decisions"); these defaults are derived from strongSwan figures in :data:`STRONGSWAN_REFERENCE`
  by :func:`strongswan_exchange_s` — read its docstring for the derivation.

``scaled(f)`` models faster (f < 1) or slower (f > 1) hardware: every cost is multiplied by f.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

DEFAULT_PROFILE = "costs-default.json"

#: IKEv2 exchange types a POP handles (RFC 7296 §3.1, RFC 9242 §3, RFC 9370 §2.3).
EXCHANGES = (
    "IKE_SA_INIT",
    "IKE_INTERMEDIATE",
    "IKE_AUTH",
    "CREATE_CHILD_SA",
    "IKE_FOLLOWUP_KE",
    "INFORMATIONAL",
)

#: Responder CPU per handshake of a strongSwan 6.1 daemon on a 2-core EPYC VM, incl. the
#: CHILD_SA and the delete, and the part of it spent in the key exchanges (ARCHITECTURE.md,
#: "Modelling decisions"). Each handshake handles four exchanges as responder:
#: IKE_SA_INIT, IKE_INTERMEDIATE (one ADDKE), IKE_AUTH (+ first Child SA), INFORMATIONAL
#: (Delete).
STRONGSWAN_REFERENCE: tuple[dict[str, Any], ...] = (
    {"proposal": "x25519+mlkem768", "total_s": 1.3e-3, "key_exchange_s": 0.3e-3, "exchanges": 4},
    {"proposal": "ecp384+mlkem768", "total_s": 2.5e-3, "key_exchange_s": 1.2e-3, "exchanges": 4},
)


class CostProfileError(ValueError):
    """A cost profile file is unreadable or malformed, or a cost is missing."""


def strongswan_exchange_s(reference: Iterable[Mapping[str, Any]] = STRONGSWAN_REFERENCE) -> float:
    """Per-exchange processing cost fitted to real strongSwan responder figures.

    For each reference handshake the non-key-exchange CPU is ``total - key_exchange``
    (1.0 ms for x25519+mlkem768, 1.3 ms for ecp384+mlkem768) and it is spread over the
    exchanges the responder handled (4 each). With one cost ``c`` per exchange the
    least-squares fit of ``4·c ≈ residual`` over both handshakes is the mean residual per
    exchange: (1.0 + 1.3) / 8 = 0.2875 ms. The figures do not tell exchange types apart, so
    every type gets the same value; the fit reproduces the two residuals to ±0.15 ms (±12 %).
    Charged on top of the measured public-key operations, a simulated x25519+mlkem768
    responder handshake then costs 1.15 ms + this machine's KE time (≈0.3 ms in strongSwan).
    """
    rows = list(reference)
    residual_s = sum(r["total_s"] - r["key_exchange_s"] for r in rows)
    return residual_s / sum(r["exchanges"] for r in rows)


class CostProfile(BaseModel):
    """A CPU cost profile as stored on disk (JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Short label named in every result (e.g. "epyc-2vcpu-pyca")."""
    backend: str
    """Crypto backend the operations were measured with ("pyca", "liboqs")."""
    operations_s: dict[str, dict[str, PositiveFloat]]
    """token -> operation -> seconds of CPU for one call."""
    exchange_s: dict[str, PositiveFloat] = Field(default_factory=dict)
    """IKE exchange type name -> seconds of CPU per exchange handled (request + response)."""
    scale: PositiveFloat = 1.0
    """Multiplier applied to every cost: > 1 for slower hardware, < 1 for faster."""
    provenance: dict[str, Any] = Field(default_factory=dict)
    """How the numbers were obtained: machine, CPU, versions, date, repetitions, method."""


class CostTable:
    """Looks up simulated CPU seconds for operations and exchanges; immutable."""

    __slots__ = ("profile", "_ops", "_exchanges", "_totals")

    def __init__(self, profile: CostProfile) -> None:
        self.profile = profile
        k = profile.scale
        self._ops = {
            (token, op): s * k
            for token, ops in profile.operations_s.items()
            for op, s in ops.items()
        }
        self._exchanges = {name: s * k for name, s in profile.exchange_s.items()}
        self._totals: dict[tuple, float] = {}  # memo of cost_s: a run asks a handful of sums
        unknown = sorted(set(self._exchanges) - set(EXCHANGES))
        if unknown:
            raise CostProfileError(f"unknown exchange type(s) in cost profile: {unknown}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def default(cls) -> CostTable:
        """The profile shipped with the package (measured on the project's build machine)."""
        text = resources.files("wansim").joinpath("data", DEFAULT_PROFILE).read_text()
        return cls.from_json(text, source=f"wansim/data/{DEFAULT_PROFILE}")

    @classmethod
    def load(cls, path: str | Path) -> CostTable:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise CostProfileError(f"{path}: cannot read cost profile: {exc.strerror}") from exc
        return cls.from_json(text, source=str(path))

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> CostTable:
        try:
            profile = CostProfile.model_validate_json(text)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise CostProfileError(f"{source}: invalid cost profile: {problems}") from None
        return cls(profile)

    def to_json(self) -> str:
        return json.dumps(self.profile.model_dump(), indent=2, sort_keys=True) + "\n"

    def scaled(self, factor: float) -> CostTable:
        """The same profile on hardware ``factor`` times slower (factor < 1: faster)."""
        if not factor > 0:
            raise CostProfileError(f"scale factor must be positive, got {factor!r}")
        return CostTable(self.profile.model_copy(update={"scale": self.profile.scale * factor}))

    # -- lookups ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.profile.name

    def operation_s(self, token: str, operation: str) -> float:
        try:
            return self._ops[(token, operation)]
        except KeyError:
            raise CostProfileError(
                f"cost profile {self.name!r} has no cost for {token} {operation}; "
                f"run `wansim calibrate` with a backend that provides it"
            ) from None

    def exchange_cost_s(self, exchange: str) -> float:
        """Processing cost of one exchange; 0 for a type the profile leaves out."""
        return self._exchanges.get(exchange, 0.0)

    def cost_s(
        self, operations: Iterable[tuple[str, str]] = (), exchange: str | None = None
    ) -> float:
        """Total CPU seconds for some crypto operations plus (optionally) one exchange."""
        if type(operations) is not tuple:  # only a tuple is a safe memo key
            return self._total_s(operations, exchange)
        key = (operations, exchange)
        total = self._totals.get(key)
        if total is None:
            total = self._totals[key] = self._total_s(operations, exchange)
        return total

    def _total_s(self, operations: Iterable[tuple[str, str]], exchange: str | None) -> float:
        total = sum(self.operation_s(t, o) for t, o in operations)
        if exchange is not None:
            total += self.exchange_cost_s(exchange)
        return total

    def __repr__(self) -> str:
        return f"CostTable({self.name!r}, scale={self.profile.scale})"
