"""strongSwan 6.1 as an interop peer: config files from parameters, and a charon runner.

`CharonConfig` renders one charon instance's `strongswan.conf` and `swanctl.conf` (the
same option names a strongSwan user writes); `Charon` starts and stops that instance
in the Debian sid chroot built by `interop/strongswan.sh` and drives it with `swanctl`.

Safety, because charon runs as root on the host: it listens on its own high ports (never
500/4500), the connection only matches 127.0.0.1 <-> 127.0.0.1, traffic selectors stay
in documentation ranges (RFC 5737), and ESP is userspace (`kernel-libipsec`) with
route installation off, so no host traffic is touched. socket-default has no bind-address
option: the sockets are wildcard-bound on those private ports, but `interfaces_use = lo`
and the 127.0.0.1-only connection leave any other sender without a matching config.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wansim.crypto.signatures import make_credentials

SCRIPT = Path(__file__).resolve().parents[2] / "interop" / "strongswan.sh"
DEFAULT_CHROOT = Path("/var/lib/wansim/sid-chroot")

# Plugins charon loads (explicit list: nothing touches xfrm, routes or DNS). openssl does
# ECP, ML-KEM (OpenSSL >= 3.5) and AES-GCM; curve25519 does X25519; kernel-libipsec is the
# userspace ESP backend; kernel-netlink only enumerates addresses (routes are off).
PLUGINS = (
    "random nonce openssl curve25519 aes sha1 sha2 hmac gcm kdf pem pkcs1 pkcs8 x509 pubkey "
    "kernel-libipsec kernel-netlink socket-default vici"
)
# TEST-NET-2 and TEST-NET-3 only: some lab hosts (this one included) number their real
# interface out of TEST-NET-1 (192.0.2.0/24), so a selector there could catch host traffic.
_DOC_RANGES = tuple(ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24"))
_SAFE = re.compile(r"^[A-Za-z0-9._@:+=/-]+$")


class StrongswanError(RuntimeError):
    """charon or the chroot could not be set up, started or driven."""


class CharonConfig(BaseModel):
    """One charon instance and its single connection `wansim` with child `net`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="peer", pattern=r"^[a-z0-9-]+$")
    """Instance name: its folder in the chroot and its log."""
    port: int = Field(default=45500, ge=1024, le=65535)
    """charon `port` (the "IKE port"; not 500, so every packet carries the non-ESP marker)."""
    port_nat_t: int = Field(default=45501, ge=1024, le=65535)
    """charon `port_nat_t`."""
    remote_port: int = Field(default=46500, ge=1, le=65535)
    """The peer's UDP port (swanctl `remote_port`)."""
    proposal: str = "aes256gcm16-prfsha256-x25519-ke1_mlkem768"
    """IKE proposal (swanctl `proposals`)."""
    esp_proposal: str = "aes256gcm16-x25519-ke1_mlkem768"
    """ESP proposal (swanctl `esp_proposals`); KE tokens give PFS on rekeys."""
    psk: str = Field(default="wansim-interop-psk-not-a-secret", repr=False)
    local_id: str = "strongswan.interop.example"
    remote_id: str = "wansim.interop.example"
    fragment_size: int = Field(default=1280, ge=576, le=65535)
    """strongswan.conf `fragment_size` (IP datagram size of each IKE fragment)."""
    local_ts: str = "203.0.113.0/24"
    remote_ts: str = "198.51.100.0/24"
    cookie_threshold_ip: int = Field(default=3, ge=1)
    """Half-open SAs from one address before charon demands a COOKIE (its default is 3)."""
    cookie_threshold: int = Field(default=30, ge=1)
    retransmit_tries: int = Field(default=2, ge=0)
    """Fewer than strongSwan's 5 so a failing test ends in seconds, not minutes."""
    retransmit_timeout_s: float = Field(default=2.0, gt=0)
    mobike: bool = False
    auth: Literal["psk", "pubkey"] = "psk"
    """"psk", or "pubkey": RFC 7427 signatures with the certificates below (ECDSA here;
    sid's strongSwan 6.1.0 has no ML-DSA in any plugin)."""
    local_cert_pem: str | None = None
    """Our certificate (PEM), sent in every IKE_AUTH (`send_cert = always`)."""
    local_key_pem: str | None = Field(default=None, repr=False)
    """Our private key (PEM, PKCS#8)."""
    remote_cert_pem: str | None = None
    """The peer's certificate (PEM), trusted as is (swanctl `remote.certs` pins it)."""
    log_level: int = Field(default=1, ge=-1, le=4)
    """charon log level for ike/cfg (4 dumps every key-schedule value); enc/net stay at 1
    so `sent_messages()` can read the log."""

    @field_validator("proposal", "esp_proposal", "local_id", "remote_id", "psk")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not _SAFE.match(value):
            raise ValueError(f"{value!r} has characters unsafe in a strongSwan config")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> CharonConfig:
        pems = (self.local_cert_pem, self.local_key_pem, self.remote_cert_pem)
        if self.auth == "pubkey" and not all(pems):
            raise ValueError('auth = "pubkey" needs local_cert_pem, local_key_pem, remote_cert_pem')
        return self

    def files(self) -> dict[str, str]:
        """Credential files for swanctl, by path relative to the swanctl.conf folder."""
        if self.auth != "pubkey":
            return {}
        return {
            "x509/local.pem": self.local_cert_pem or "",
            "x509/remote.pem": self.remote_cert_pem or "",
            "private/local.pem": self.local_key_pem or "",
        }

    @field_validator("local_ts", "remote_ts")
    @classmethod
    def _documentation_range(cls, value: str) -> str:
        net = ipaddress.ip_network(value, strict=False)
        if not any(net.subnet_of(doc) for doc in _DOC_RANGES):
            raise ValueError(f"{value} is outside 198.51.100.0/24 and 203.0.113.0/24 (RFC 5737)")
        return value

    def strongswan_conf(self, instance_dir: str) -> str:
        """The `strongswan.conf` text; `instance_dir` is the folder as charon sees it."""
        return f"""# generated by wansim.interop.strongswan
charon {{
    port = {self.port}
    port_nat_t = {self.port_nat_t}
    interfaces_use = lo
    install_routes = no
    install_virtual_ip = no
    routing_table = 0
    fragment_size = {self.fragment_size}
    cookie_threshold = {self.cookie_threshold}
    cookie_threshold_ip = {self.cookie_threshold_ip}
    retransmit_tries = {self.retransmit_tries}
    retransmit_timeout = {self.retransmit_timeout_s}
    load = {PLUGINS}
    plugins {{
        vici {{
            socket = unix://{instance_dir}/charon.vici
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
    filelog {{
        wansim {{
            path = {instance_dir}/charon.log
            time_format = %H:%M:%S
            time_add_ms = yes
            default = 1
            ike = {self.log_level}
            cfg = {self.log_level}
            enc = 1
            net = 1
            flush_line = yes
        }}
    }}
}}
"""

    def swanctl_conf(self) -> str:
        """The `swanctl.conf` text: connection `wansim`, child `net`, one PSK."""

        def certs(side: str) -> str:
            # Relative to the x509/ folder next to swanctl.conf (see `files()`).
            return f"\n            certs = {side}.pem" if self.auth == "pubkey" else ""

        return f"""# generated by wansim.interop.strongswan
connections {{
    wansim {{
        version = 2
        local_addrs = 127.0.0.1
        remote_addrs = 127.0.0.1
        local_port = {self.port}
        remote_port = {self.remote_port}
        proposals = {self.proposal}
        fragmentation = yes
        mobike = {"yes" if self.mobike else "no"}
        send_cert = always
        rekey_time = 0
        local {{
            auth = {self.auth}
            id = {self.local_id}{certs("local")}
        }}
        remote {{
            auth = {self.auth}
            id = {self.remote_id}{certs("remote")}
        }}
        children {{
            net {{
                local_ts = {self.local_ts}
                remote_ts = {self.remote_ts}
                esp_proposals = {self.esp_proposal}
                rekey_time = 0
                start_action = none
                close_action = none
                dpd_action = clear
            }}
        }}
    }}
}}
secrets {{
    ike-wansim {{
        id-1 = {self.local_id}
        id-2 = {self.remote_id}
        secret = "{self.psk}"
    }}
}}
"""


def pubkey_credentials(token: str, identity: str) -> tuple[object, bytes, str, str]:
    """A fresh key and self-signed certificate for `identity` (signature scheme `token`,
    e.g. "ecdsa-p256"): (private key, DER certificate) as wansim's `credentials`, then
    (key PEM, certificate PEM) for a `CharonConfig` with `auth = "pubkey"`."""
    key, der = make_credentials(token, identity)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    cert_pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    return key, der, key_pem, cert_pem.decode()


@dataclass(frozen=True)
class SentMessage:
    """One IKE message charon sent, from its log: what it held and its datagram sizes."""

    exchange: str
    """charon's name: IKE_SA_INIT, IKE_INTERMEDIATE, IKE_AUTH, CREATE_CHILD_SA, ..."""
    is_response: bool
    message_id: int
    payloads: str
    """charon's payload summary, e.g. "SA KE No N(NATD_S_IP) ..." (of the unfragmented
    message when it was split)."""
    datagram_bytes: tuple[int, ...]
    """IKE bytes of each datagram sent (one per fragment; the non-ESP marker excluded)."""
    message_bytes: int | None = None
    """The unfragmented message's size when charon split it into fragments."""


_GENERATING = re.compile(r"\[ENC\] generating (\S+) (request|response) (\d+) \[(.*)\]$")
_SPLITTING = re.compile(r"\[ENC\] splitting IKE message \((\d+) bytes\) into (\d+) fragments")
_SENDING = re.compile(r"\[NET\] sending packet: from \S+ to \S+ \((\d+) bytes\)")


def sent_messages(log: str) -> list[SentMessage]:
    """The IKE messages a charon log (enc and net at level >= 1) says were sent, in order.

    charon logs "generating ..." when it builds a message (and once per fragment, after
    "splitting ..."), then its sender thread logs "sending packet ... (N bytes)" per datagram
    in the same order; retransmissions are logged without a "generating" line and skipped.
    """
    messages: list[SentMessage] = []
    queue: list[dict] = []  # messages built and not yet fully sent, in sending order
    split: tuple[int, int] | None = None
    fragment_lines_left = 0
    for line in log.splitlines():
        if "[IKE] retransmit" in line:
            queue.insert(0, {"skip": True, "count": 1, "sizes": []})
        elif match := _SPLITTING.search(line):
            split = (int(match.group(1)), int(match.group(2)))
        elif match := _GENERATING.search(line):
            if split is not None:  # first fragment: the parent message was queued just before
                queue[-1].update(whole=split[0], count=split[1])
                fragment_lines_left, split = split[1] - 1, None
            elif fragment_lines_left:
                fragment_lines_left -= 1
            else:
                exchange, kind, mid, payloads = match.groups()
                queue.append(
                    {
                        "exchange": exchange,
                        "is_response": kind == "response",
                        "mid": int(mid),
                        "payloads": payloads.strip(),
                        "whole": None,
                        "count": 1,
                        "sizes": [],
                    }
                )
        elif (match := _SENDING.search(line)) and queue:
            head = queue[0]
            head["sizes"].append(int(match.group(1)))
            if len(head["sizes"]) == head["count"]:
                queue.pop(0)
                if not head.get("skip"):
                    messages.append(
                        SentMessage(
                            head["exchange"],
                            head["is_response"],
                            head["mid"],
                            head["payloads"],
                            tuple(head["sizes"]),
                            head["whole"],
                        )
                    )
    return messages


@dataclass
class SwanctlResult:
    """What one `swanctl` call printed and returned."""

    returncode: int
    output: str


class Charon:
    """One running charon in the sid chroot (use as a context manager: stops by its PID)."""

    def __init__(self, config: CharonConfig, *, chroot: Path | None = None) -> None:
        self.config = config
        self.chroot = Path(chroot or os.environ.get("WANSIM_CHROOT") or DEFAULT_CHROOT)
        self.instance_dir = f"/var/lib/wansim-charon/{config.name}"
        self._final_log: str | None = None

    def _script(self, *args: str, timeout_s: float = 60) -> SwanctlResult:
        done = _run_script(
            args, self.chroot, timeout_s, f"strongswan.sh {args[0]} timed out after {timeout_s} s"
        )
        return SwanctlResult(done.returncode, done.stdout + done.stderr)

    @property
    def log_path(self) -> Path:
        return self.chroot / self.instance_dir.lstrip("/") / "charon.log"

    def log(self) -> str:
        """charon's log so far ('' before it started; the final log once stopped)."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        self._final_log = None
        with tempfile.TemporaryDirectory(prefix="wansim-charon-") as tmp:
            Path(tmp, "strongswan.conf").write_text(self.config.strongswan_conf(self.instance_dir))
            Path(tmp, "swanctl.conf").write_text(self.config.swanctl_conf())
            for relative, text in self.config.files().items():
                Path(tmp, relative).parent.mkdir(parents=True, exist_ok=True)
                Path(tmp, relative).write_text(text)
            done = self._script("start", self.config.name, tmp)
        if done.returncode != 0:
            raise StrongswanError(f"charon {self.config.name} did not start: {done.output[-800:]}")

    def stop(self, *, keep_files: bool = False) -> None:
        """Stop charon by its PID; its log stays readable through `log()`. Unless
        `keep_files`, its folder in the chroot (configs, log, vici socket) is removed."""
        final = self.log()
        self._script("stop", self.config.name, *(() if keep_files else ("--remove",)))
        self._final_log = final

    def swanctl(self, *args: str, timeout_s: float = 60) -> SwanctlResult:
        """Run `swanctl ARGS` against this instance's vici socket."""
        return self._script("swanctl", self.config.name, *args, timeout_s=timeout_s)

    def initiate(self, timeout_s: float = 20) -> SwanctlResult:
        """Initiate the IKE SA and Child SA `net`; returns when done or failed."""
        return self.swanctl(
            "--initiate",
            "--child",
            "net",
            "--timeout",
            str(int(timeout_s)),
            timeout_s=timeout_s + 10,
        )

    def __enter__(self) -> Charon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run_script(
    args: tuple[str, ...], chroot: Path | None, timeout_s: float, timeout_message: str
) -> subprocess.CompletedProcess[str]:
    """Run `interop/strongswan.sh ARGS` (on `chroot`, else its default); a timeout raises
    `StrongswanError(timeout_message)`."""
    env = dict(os.environ)
    if chroot is not None:
        env["WANSIM_CHROOT"] = str(chroot)
    try:
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StrongswanError(timeout_message) from exc


def setup_chroot(chroot: Path | None = None, timeout_s: float = 1800) -> str:
    """Build (or reuse) the sid chroot; raise `StrongswanError` with the reason on failure."""
    done = _run_script(
        ("setup",), chroot, timeout_s, f"building the sid chroot took over {timeout_s} s"
    )
    if done.returncode != 0:
        raise StrongswanError(f"cannot build the strongSwan sid chroot: {done.stderr[-1500:]}")
    return done.stdout.strip()
