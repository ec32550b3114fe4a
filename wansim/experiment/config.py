"""The experiment schema: what a TOML experiment file may say, validated and frozen.

An experiment file has one table per concern — `[topology]`, `[sites]`, `[ike]` (with
`[ike.child]`), `[pop]`, `[anycast]`, `[failures]`, `[failover]`, `[run]`, `[outputs]`,
`[sweep]` — and every key has a one-line description (`wansim validate --keys` lists
them all). Unknown keys are errors, never ignored.

Conventions:

* Durations accept "90s", "4h", "30d", "1h30m", "250ms" or a number of seconds, and are
  stored as float seconds (:mod:`wansim.experiment.durations`).
* IKE timer names are strongSwan's (`rekey_time`, `rand_time`, `life_time`, `dpd_delay`,
  `retransmit_timeout`, `fragment_size`); defaults are strongSwan's, or a branch-router
  profile's (:mod:`wansim.experiment.profiles`).
* Proposal strings are strongSwan's (`aes256gcm16-prfsha384-ecp384-ke1_mlkem768`), checked
  with :mod:`wansim.ike.proposals`.
* POP codes and regions are checked against the loaded topology.

The simulator (:func:`wansim.simulate`) takes an :class:`ExperimentConfig`; files are read
with :func:`wansim.experiment.load_experiment`.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from wansim.experiment import catalogue
from wansim.experiment.durations import Duration, parse_duration
from wansim.experiment.profiles import CHILD_DEFAULTS, DERIVED, IKE_DEFAULTS, SiteProfile
from wansim.ike.config import IkeConfig
from wansim.ike.proposals import parse_proposal
from wansim.topology import ACCESS_PROFILES
from wansim.topology.pops import pop_code

Strategy = Literal["replicated", "rehandshake", "dual-tunnel"]
#: The engine's IKE_AUTH methods ("psk" or a signature scheme), as `IkeConfig` declares them.
AuthScheme = IkeConfig.model_fields["auth"].annotation
FailureKind = Literal["graceful", "silent"]
Table = Literal["handshakes", "pop_load", "failovers"]
TABLES: tuple[Table, ...] = ("handshakes", "pop_load", "failovers")


class Section(BaseModel):
    """Base of every table: frozen, unknown keys refused, docstrings become descriptions."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _tuple_of_str(value: object) -> object:
    """A single string where a list is expected means a list of one."""
    return (value,) if isinstance(value, str) else value


StrTuple = Annotated[tuple[str, ...], BeforeValidator(_tuple_of_str)]


def _pop_code(value: object) -> object:
    return pop_code(value.strip()) if isinstance(value, str) else value


PopCode = Annotated[str, BeforeValidator(_pop_code)]


# --------------------------------------------------------------------------- distributions
class Distribution(Section):
    """A random duration: `{kind = "lognormal", median = "3s", sigma = 1.43}` or just "4h".

    Parameters by kind: fixed(value), exponential(mean), lognormal(median, sigma),
    uniform(low, high), weibull(scale, shape).
    """

    kind: Literal["fixed", "exponential", "lognormal", "uniform", "weibull"]
    """Family of the distribution."""
    value: Duration | None = None
    """fixed: the duration every draw returns."""
    mean: Duration | None = None
    """exponential: the mean duration."""
    median: Duration | None = None
    """lognormal: the median duration (exp(mu))."""
    sigma: float | None = Field(default=None, gt=0)
    """lognormal: standard deviation of the log (dimensionless)."""
    low: Duration | None = None
    """uniform: smallest duration."""
    high: Duration | None = None
    """uniform: largest duration."""
    scale: Duration | None = None
    """weibull: scale parameter (duration)."""
    shape: float | None = Field(default=None, gt=0)
    """weibull: shape parameter k (dimensionless; 1 = exponential)."""

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, data: Any) -> Any:
        if isinstance(data, str | int | float) and not isinstance(data, bool):
            return {"kind": "fixed", "value": data}
        return data

    @model_validator(mode="after")
    def _parameters_match_kind(self) -> Distribution:
        needed = _DIST_PARAMS[self.kind]
        given = {name for name in _ALL_PARAMS if getattr(self, name) is not None}
        missing = sorted(set(needed) - given)
        extra = sorted(given - set(needed))
        if missing or extra:
            want = ", ".join(needed)
            raise ValueError(
                f"a {self.kind} distribution takes exactly ({want})"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; not used: {', '.join(extra)}" if extra else "")
            )
        if self.kind == "uniform" and self.high < self.low:  # type: ignore[operator]
            raise ValueError("uniform distribution needs low <= high")
        if self.kind in ("exponential", "weibull") and (self.mean or self.scale or 0) <= 0:
            raise ValueError(f"a {self.kind} distribution needs a positive mean/scale")
        return self

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Draw `size` durations in seconds (a float when size is None) from `rng`."""
        match self.kind:
            case "fixed":
                return self.value if size is None else np.full(size, self.value)
            case "exponential":
                return rng.exponential(self.mean, size)
            case "lognormal":
                return rng.lognormal(math.log(self.median), self.sigma, size)
            case "uniform":
                return rng.uniform(self.low, self.high, size)
            case "weibull":
                return self.scale * rng.weibull(self.shape, size)
        raise AssertionError(self.kind)  # unreachable: kind is a Literal

    def mean_s(self) -> float:
        """The distribution's mean in seconds."""
        match self.kind:
            case "fixed":
                return self.value
            case "exponential":
                return self.mean
            case "lognormal":
                return self.median * math.exp(self.sigma**2 / 2)
            case "uniform":
                return (self.low + self.high) / 2
            case "weibull":
                return self.scale * math.gamma(1 + 1 / self.shape)
        raise AssertionError(self.kind)


_DIST_PARAMS = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "lognormal": ("median", "sigma"),
    "uniform": ("low", "high"),
    "weibull": ("scale", "shape"),
}
_ALL_PARAMS = ("value", "mean", "median", "sigma", "low", "high", "scale", "shape")


# --------------------------------------------------------------------------- [topology]
class BackboneConfig(Section):
    """The POP-to-POP backbone graph and how fast light crosses it."""

    file: str | None = None
    """GraphML/GML file of backbone links; unset builds k-nearest plus meshed regional hubs."""
    k_nearest: int = Field(default=3, ge=1)
    """Each POP is linked to its k nearest POPs when no file is given."""
    stretch: float = Field(default=1.3, ge=1.0)
    """Fibre path length ÷ great-circle distance on the backbone (≈1.3 on a good backbone)."""
    fibre_km_per_ms: float = Field(default=204.0, gt=0)
    """Propagation speed in fibre (≈ c / 1.47)."""


class TopologyConfig(Section):
    """Which POPs exist and how they are connected."""

    pops: str = "cloudflare"
    """POP list: "cloudflare" (360 POPs), a topologies/ name ("europe5"), or a CSV path."""
    only: StrTuple | None = None
    """Keep only these POP codes (e.g. ["FRA", "AMS", "LHR"]); unset keeps all."""
    regions: StrTuple | None = None
    """Keep only POPs in these regions (e.g. ["Europe"]); unset keeps all."""
    backbone: BackboneConfig = BackboneConfig()
    """The backbone graph between POPs."""

    @field_validator("only")
    @classmethod
    def _codes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("`only` cannot be empty; leave it out to keep every POP")
        return tuple(_pop_code(code) for code in value)  # type: ignore[misc]


# --------------------------------------------------------------------------- [sites]
class AccessOverrides(Section):
    """Access-link properties forced on every site, whatever its access profile says."""

    delay: Duration | None = None
    """One-way last-mile delay added to propagation."""
    jitter: Duration | None = None
    """Mean of the exponential per-datagram extra delay."""
    loss: float | None = Field(default=None, ge=0.0, lt=1.0)
    """Per-packet (per IP fragment) loss probability of the whole site–POP path."""
    mtu: int | None = Field(default=None, ge=576, le=9000)
    """IP MTU of the access link in bytes; larger datagrams are IP-fragmented."""
    bandwidth_bps: float | None = Field(default=None, gt=0)
    """Access link rate in bit/s, for serialization delay."""
    drops_fragments: bool | None = None
    """True for paths whose middleboxes drop IP fragments."""


class SitesConfig(Section):
    """The branch sites (IKE initiators): a CSV file, or `count` generated around POP cities."""

    count: int | None = Field(default=None, ge=1)
    """Number of sites to generate; exclusive with `file`."""
    file: str | None = None
    """CSV of sites (name, lat, lon, optional access profile); exclusive with `count`."""
    region_weights: dict[str, float] | None = None
    """Relative share of generated sites per POP region; unset = proportional to POP count."""
    mean_distance_km: float = Field(default=40.0, ge=0)
    """Mean distance of a generated site from the POP city it clusters around (exponential)."""
    max_distance_km: float = Field(default=300.0, ge=0)
    """Generated sites are at most this far from their POP city."""
    access_mix: dict[str, float] | None = None
    """Share of generated sites per access profile (fibre, cable, dsl, lte); unset = default mix."""
    access: AccessOverrides = AccessOverrides()
    """Access-link properties forced on every site (e.g. {loss = 0.01})."""
    start_window: Duration = 60.0
    """Sites bring their tunnels up at uniformly random instants in [0, start_window)."""

    @field_validator("region_weights", "access_mix")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        for key, weight in value.items():
            if not 0 <= weight < math.inf:
                raise ValueError(f"weight of {key!r} must be a finite number >= 0, got {weight}")
        if sum(value.values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return value

    @field_validator("access_mix")
    @classmethod
    def _profiles(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        unknown = sorted(set(value or ()) - set(ACCESS_PROFILES))
        if unknown:
            raise ValueError(
                f"unknown access profile(s) {', '.join(unknown)}; "
                f"known: {', '.join(ACCESS_PROFILES)}"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SitesConfig:
        if (self.count is None) == (self.file is None):
            raise ValueError("give exactly one of `count` (generated sites) or `file` (CSV)")
        return self


# --------------------------------------------------------------------------- [ike]
def _check_proposal(text: str, protocol: str) -> str:
    """Validate one strongSwan proposal string with the IKE codec (names the bad token)."""
    parse_proposal(text, protocol=protocol)
    return text


class ChildConfig(Section):
    """The Child SA (ESP) each tunnel carries, as in swanctl `children.<name>`."""

    esp_proposals: StrTuple = Field(default=("aes256gcm16",), min_length=1)
    """ESP proposals; a KE token ("aes256gcm16-x25519-ke1_mlkem768") adds PFS to rekeys."""
    rekey_time: Duration = Field(default=3600.0, gt=0)
    """Child SA rekey interval (strongSwan 1h)."""
    life_time: Duration = Field(default=3960.0, gt=0)
    """Hard Child SA lifetime (strongSwan: 110 % of rekey_time); sets rand_time's default."""
    rand_time: Duration = 360.0
    """Rekeys happen up to this much before rekey_time, uniformly (strongSwan: life − rekey)."""

    @field_validator("esp_proposals")
    @classmethod
    def _esp(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_proposal(text, "esp") for text in value)

    @model_validator(mode="after")
    def _times(self) -> ChildConfig:
        if self.life_time < self.rekey_time:
            raise ValueError("life_time must be >= rekey_time")
        if self.rand_time > self.rekey_time:
            raise ValueError("rand_time must not exceed rekey_time")
        return self


class IkeSection(Section):
    """IKE policy of every branch site (initiator), in strongSwan's names."""

    profile: SiteProfile = "strongswan"
    """Branch-router profile whose defaults fill the timers left out: strongswan|fortios|cisco."""
    proposals: StrTuple = Field(
        default=("aes256gcm16-prfsha384-x25519-ke1_mlkem768",), min_length=1
    )
    """IKE proposals in strongSwan syntax, most preferred first."""
    rekey_time: Duration = Field(default=4 * 3600.0, gt=0)
    """IKE SA rekey interval (strongSwan 4h)."""
    rand_time: Duration = 1440.0
    """IKE rekeys happen up to this much before rekey_time, uniformly (strongSwan: 10 %)."""
    child: ChildConfig = ChildConfig()
    """The Child SA (ESP) settings."""
    retransmit_timeout: Duration = Field(default=4.0, gt=0)
    """Wait before the first retransmission (strongSwan 4 s)."""
    retransmit_base: float = Field(default=1.8, ge=1.0)
    """Back-off base: wait n is retransmit_timeout × base^n (strongSwan 1.8)."""
    retransmit_tries: int = Field(default=5, ge=0)
    """Retransmissions before giving up (strongSwan 5, i.e. ≈165 s in total)."""
    fragmentation: bool = True
    """Announce and use IKE fragmentation (RFC 7383)."""
    fragment_size: int = Field(default=1280, ge=576, le=65535)
    """Largest IP datagram carrying an IKE fragment (strongSwan `fragment_size`)."""
    port_4500: Literal["auto", "always"] = "auto"
    """Float to UDP 4500 only when NAT is detected ("auto") or always (as behind NAT)."""
    dpd_delay: Duration = 0.0
    """Liveness check this long after inbound traffic stops; 0 = off; timeout = retransmit_*."""
    dpd_action: Literal["restart", "clear", "trap"] = "restart"
    """What a site does when DPD declares the POP dead (branches restart the tunnel)."""
    backend: Literal["auto", "pyca", "liboqs"] = "auto"
    """Crypto backend for key exchanges (see `wansim.crypto`)."""
    auth: AuthScheme = "psk"
    """IKE_AUTH of sites and POPs: "psk", or RFC 7427 signatures with a certificate per
    endpoint: ecdsa-p256, ecdsa-p384, mldsa44, mldsa65, mldsa87 (post-quantum)."""
    max_packet: int = Field(default=10_000, ge=1280)
    """Largest reassembled IKE message either end accepts (strongSwan `charon.max_packet`,
    10000): an IKE_AUTH with an ML-DSA-87 certificate is larger and is dropped."""

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """Fill keys left out from the site profile, then strongSwan's derived defaults."""
        if not isinstance(data, dict):
            return data
        profile = data.get("profile", "strongswan")
        if profile not in IKE_DEFAULTS:
            return data  # the Literal check reports it
        data = {**IKE_DEFAULTS[profile], **data}
        child = data.get("child", {})
        if isinstance(child, dict):
            child = {**CHILD_DEFAULTS[profile], **child}
            _derive(child, "life_time", "child.life_time")
            _derive(child, "rand_time", "child.rand_time")
            data["child"] = child
        _derive(data, "rand_time", "ike.rand_time")
        return data

    @field_validator("proposals")
    @classmethod
    def _ike(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_proposal(text, "ike") for text in value)

    @model_validator(mode="after")
    def _times(self) -> IkeSection:
        if self.rand_time > self.rekey_time:
            raise ValueError("rand_time must not exceed rekey_time")
        return self


def _derive(data: dict[str, Any], key: str, rule: str) -> None:
    """Set data[key] from DERIVED[rule] unless given; leave it alone if inputs are bad."""
    if key in data:
        return
    try:
        parsed = {k: parse_duration(v) for k, v in data.items() if k in ("rekey_time", "life_time")}
        data[key] = round(DERIVED[rule](parsed), 6)  # 3960, not 3960.0000000000005
    except (ValueError, KeyError):
        pass  # the field's own validation reports the bad input


# --------------------------------------------------------------------------- [pop]
class PopConfig(Section):
    """Each POP's IKE responder: CPU cores, cost table and admission control."""

    cores: int = Field(default=4, ge=1)
    """CPU cores per POP that process IKE (a simpy resource)."""
    cores_by_pop: dict[str, int] = Field(default_factory=dict)
    """Per-POP override of `cores`, e.g. {FRA = 16}."""
    cost_profile: str = "default"
    """CPU cost table: "default" (shipped with wansim) or a JSON file from `wansim calibrate`."""
    cpu_scale: float = Field(default=1.0, gt=0)
    """Multiplies every cost: > 1 for slower POP hardware than the profile's, < 1 faster."""
    cookie_threshold: int = Field(default=30, ge=0)
    """Demand a COOKIE once this many half-open IKE SAs exist; 0 = never (strongSwan 30)."""
    half_open_timeout: Duration = Field(default=30.0, gt=0)
    """A half-open IKE SA is dropped after this long (strongSwan 30 s)."""
    handshake_rate_cap: float | None = Field(default=None, gt=0)
    """Max new IKE_SA_INIT accepted per second per POP; unset = no cap (excess is dropped)."""

    @field_validator("cores_by_pop", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_pop_code(k): v for k, v in value.items()}
        return value

    @field_validator("cores_by_pop")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [code for code, n in value.items() if n < 1]
        if bad:
            raise ValueError(f"cores must be >= 1 (got {', '.join(bad)})")
        return value


# --------------------------------------------------------------------------- [anycast]
class DetectionConfig(Section):
    """How long until the network notices a POP is gone, by failure kind."""

    graceful: Duration = 0.0
    """Drain: routes are withdrawn at once."""
    silent: Duration = 90.0
    """Silent death: BGP hold timer expiry (RFC 4271 §10 suggests 90 s; BFD ≈ 1 s)."""


class AnycastConfig(Section):
    """Anycast catchments and how routes reconverge after a POP fails or returns."""

    non_nearest_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    """Share of sites whose catchment is not their nearest POP (≈0.2 measured for CDNs)."""
    convergence: Distribution = Distribution(kind="lognormal", median=3.0, sigma=1.43)
    """Per-site route convergence delay after detection (default: median 3 s, 80 % < 10 s)."""
    detection: DetectionConfig = DetectionConfig()
    """Failure detection delay by failure kind."""


# --------------------------------------------------------------------------- [failures]
class ScheduledFailure(Section):
    """One POP failure at a fixed time."""

    pop: PopCode
    """IATA code of the failing POP."""
    at: Duration
    """Simulated time of the failure."""
    duration: Duration = Field(gt=0)
    """How long the POP stays down."""
    kind: FailureKind = "silent"
    """graceful (drained, routes withdrawn at once) or silent (dies, found by timers)."""


class RegionalFailure(Section):
    """Every POP of a region fails together (a correlated outage)."""

    region: str
    """Region name as in the POP list (e.g. "Europe")."""
    at: Duration
    """Simulated time of the failure."""
    duration: Duration = Field(gt=0)
    """How long the POPs stay down."""
    kind: FailureKind = "silent"
    """graceful or silent."""


class RandomFailures(Section):
    """Independent random failures of every POP (alternating up/down renewal process)."""

    mtbf: Distribution
    """Time between failures of one POP (e.g. "30d" or {kind = "exponential", mean = "30d"})."""
    mttr: Distribution
    """Time to repair (e.g. {kind = "lognormal", median = "20m", sigma = 1.0})."""
    kind: FailureKind = "silent"
    """graceful or silent."""


class FailuresConfig(Section):
    """POP failures to inject."""

    scheduled: tuple[ScheduledFailure, ...] = ()
    """Failures at fixed times ([[failures.scheduled]] entries)."""
    regional: tuple[RegionalFailure, ...] = ()
    """Correlated failures of whole regions ([[failures.regional]] entries)."""
    random: RandomFailures | None = None
    """Random per-POP failures; unset = none."""


# --------------------------------------------------------------------------- [failover]
class FailoverConfig(Section):
    """Failover strategies; several are compared on the same world and failures."""

    strategies: tuple[Strategy, ...] = ("replicated",)
    """Any of replicated | rehandshake | dual-tunnel; each row is tagged with its strategy."""
    replication_delay: Duration = 1.0
    """replicated: time for a new SA's state to reach every POP (an assumption, not published)."""
    health_check_interval: Duration = Field(default=1.0, ge=0)
    """dual-tunnel: tunnel health-check probe interval (Cloudflare rate "high" ≈ 1 s); 0 = off."""
    health_check_failures: int = Field(default=3, ge=1)
    """dual-tunnel: consecutive missed probes that declare a tunnel down (a probe + 2 retries)."""

    @field_validator("strategies", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return _tuple_of_str(value)

    @field_validator("strategies")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one strategy")
        if len(set(value)) != len(value):
            raise ValueError("each strategy may be listed once")
        return value


# --------------------------------------------------------------------------- [run]
class RunConfig(Section):
    """Length, seed and measurement resolution of one run."""

    duration: Duration = Field(default=3600.0, gt=0)
    """Simulated time to run."""
    seed: int = Field(default=1, ge=0, lt=2**63)
    """Seed of the run's random generator (split per actor); same seed, same results."""
    warm_up: Duration = 0.0
    """Metrics before this instant are discarded (initial establishment transient)."""
    pop_load_resolution: Duration = Field(default=10.0, gt=0)
    """Bin width of the pop_load time series."""

    @model_validator(mode="after")
    def _warm_up_inside(self) -> RunConfig:
        if self.warm_up >= self.duration:
            raise ValueError("warm_up must be shorter than duration")
        return self


# --------------------------------------------------------------------------- [outputs]
class OutputsConfig(Section):
    """Which tables a run writes."""

    tables: tuple[Table, ...] = Field(default=TABLES, min_length=1)
    """Tables written as parquet: handshakes, pop_load, failovers."""
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    """Parquet compression codec."""


# --------------------------------------------------------------------------- [sweep]
class SweepConfig(Section):
    """Parameter grid and replications; each grid point × replication is one run."""

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """Dotted path -> values, e.g. {"pop.cores" = [2, 4, 8]}; the runs are the cartesian product."""
    replications: int = Field(default=1, ge=1)
    """Runs per grid point, each with its own seed derived from run.seed."""

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in value.items():
            if not values:
                raise ValueError(f"grid {path!r} has no values")
            if path.split(".")[0] == "sweep":
                raise ValueError(f"grid {path!r}: the sweep cannot sweep itself")
            spelled = [json.dumps(v, sort_keys=True) for v in values]
            if len(set(spelled)) != len(spelled):
                raise ValueError(f"grid {path!r} lists a value twice")
        return value


# --------------------------------------------------------------------------- experiment
class ExperimentConfig(Section):
    """A whole experiment: the world, the tunnels, the failures and how to run and sweep."""

    name: str = Field(default="experiment", pattern=r"^[A-Za-z0-9_.-]+$")
    """Short name used in output folders and reports."""
    description: str = ""
    """What the experiment asks, in a sentence or two."""
    topology: TopologyConfig = TopologyConfig()
    """POPs and backbone."""
    sites: SitesConfig
    """Branch sites (initiators)."""
    ike: IkeSection = IkeSection()
    """IKE policy of the sites."""
    pop: PopConfig = PopConfig()
    """POP responders."""
    anycast: AnycastConfig = AnycastConfig()
    """Anycast routing."""
    failures: FailuresConfig = FailuresConfig()
    """Failures to inject."""
    failover: FailoverConfig = FailoverConfig()
    """Failover strategies."""
    run: RunConfig = RunConfig()
    """Length, seed, resolution."""
    outputs: OutputsConfig = OutputsConfig()
    """Tables to write."""
    sweep: SweepConfig = SweepConfig()
    """Grid and replications (ignored by a single `wansim run`)."""

    # The user's data before defaults, kept so a sweep point that changes `rekey_time`
    # recomputes the derived `rand_time` as strongSwan would (see loader.with_values).
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _against_topology(self) -> ExperimentConfig:
        """POP codes and region names must exist in the chosen topology; the sites CSV
        must load."""
        errors: list[InitErrorDetails] = []

        def bad(loc: tuple[str | int, ...], message: str, value: Any) -> None:
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("topology", message), loc=loc, input=value
                )
            )

        pops = catalogue.pops(self.topology)
        if isinstance(pops, str):
            bad(("topology", "pops"), pops, self.topology.pops)
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        codes, regions = set(pops), set(pops.values())
        for i, code in enumerate(self.topology.only or ()):
            if code not in codes:
                bad(("topology", "only", i), _unknown_pop(code, self.topology.pops), code)
        for i, region in enumerate(self.topology.regions or ()):
            if region not in regions:
                bad(("topology", "regions", i), _unknown_region(region, regions), region)
        kept = catalogue.kept(pops, self.topology)
        if not kept and not errors:
            bad(("topology",), "no POP is left after `only` and `regions`", None)
        kept_regions = set(kept.values())
        for code in self.pop.cores_by_pop:
            if code not in kept:
                bad(("pop", "cores_by_pop", code), _unknown_pop(code, self.topology.pops), code)
        for i, failure in enumerate(self.failures.scheduled):
            if failure.pop not in kept:
                bad(
                    ("failures", "scheduled", i, "pop"),
                    _unknown_pop(failure.pop, self.topology.pops),
                    failure.pop,
                )
        for i, failure in enumerate(self.failures.regional):
            if failure.region not in kept_regions:
                bad(
                    ("failures", "regional", i, "region"),
                    _unknown_region(failure.region, kept_regions),
                    failure.region,
                )
        problem = catalogue.sites_problem(self.sites.file) if self.sites.file else None
        if problem is not None:
            bad(("sites", "file"), problem, self.sites.file)
        for region in self.sites.region_weights or ():
            if region not in kept_regions:
                bad(
                    ("sites", "region_weights", region),
                    _unknown_region(region, kept_regions),
                    region,
                )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


def _unknown_pop(code: str, topology: str) -> str:
    return f"unknown POP code {code!r} in topology {topology!r}"


def _unknown_region(region: str, regions: set[str]) -> str:
    return f"unknown region {region!r}; known: {', '.join(sorted(regions))}"
