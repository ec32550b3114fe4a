"""Interop matrix against strongSwan 6.1 (charon in a Debian sid chroot), in both roles.

wansim initiator -> charon responder, and charon initiator -> wansim responder, over real
UDP on 127.0.0.1 (charon on private ports, so every datagram carries the non-ESP marker):
x25519; x25519+mlkem768; ecp384+mlkem768; ecp256+mlkem1024; x25519+mlkem768+mlkem1024,
each followed by a Child SA rekey with PFS and additional KEs (IKE_FOLLOWUP_KE) and an IKE
SA rekey; fragment sizes 1280 (the default in those cases) and 576; a wrong PSK failing
cleanly on both sides; a COOKIE challenge answered. Success is checked on both ends: our
events, and charon's own log lines.

Needs root (debootstrap, chroot): the chroot is built on first use by
`interop/strongswan.sh setup` and reused. When it cannot be built the tests FAIL with the
reason; they are never skipped. Run them with `make interop` (marker `interop`). The
tests without charon (wansim to wansim over real UDP, CLI input errors) run in `make test`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.sysdeps import _install
from tests.tshark import ike_frames
from wansim.cli import main
from wansim.ike.config import IkeConfig
from wansim.ike.constants import NON_ESP_MARKER
from wansim.ike.events import (
    ChildSaRekeyed,
    CookieDemanded,
    IkeSaEstablished,
    IkeSaRekeyed,
)
from wansim.ike.pcap import pcap_bytes
from wansim.ike.sa import IkeSa
from wansim.interop.session import ResponderThread, SessionResult, initiate
from wansim.interop.strongswan import (
    Charon,
    CharonConfig,
    StrongswanError,
    pubkey_credentials,
    sent_messages,
    setup_chroot,
)


def _free_udp_ports(count: int) -> list[int]:
    """`count` consecutive free UDP ports on 127.0.0.1 below the ephemeral range, chosen by
    PID so two test runs on one machine (CI and a developer) do not collide."""
    for attempt in range(200):
        base = 20000 + (os.getpid() * 7 + attempt * 31) % 10000
        sockets = []
        try:
            for port in range(base, base + count):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return list(range(base, base + count))
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError("no free block of UDP ports on 127.0.0.1")


CHARON_PORT, CHARON_NAT_T_PORT, WANSIM_PORT, SPARE_PORT = _free_udp_ports(4)
INSTANCE = f"interop{os.getpid()}"  # charon instance names, unique per test run
PSK = "wansim-interop-psk-not-a-secret"
INITIATOR_ID, RESPONDER_ID = "initiator.interop.example", "responder.interop.example"
INITIATOR_TS, RESPONDER_TS = "198.51.100.0/24", "203.0.113.0/24"


@dataclass(frozen=True)
class Case:
    name: str
    ike: str
    esp: str
    methods: tuple[str, ...]  # KE methods the IKE SA runs, main first
    fragment_size: int = 1280


CASES = [
    Case("x25519", "aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519", ("x25519",)),
    Case(
        "x25519+mlkem768",
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
        "aes256gcm16-x25519-ke1_mlkem768",
        ("x25519", "mlkem768"),
    ),
    Case(
        "ecp384+mlkem768",
        "aes256gcm16-prfsha384-ecp384-ke1_mlkem768",
        "aes256gcm16-ecp384-ke1_mlkem768",
        ("ecp384", "mlkem768"),
    ),
    Case(
        "ecp256+mlkem1024",
        "aes256gcm16-prfsha256-ecp256-ke1_mlkem1024",
        "aes256gcm16-ecp256-ke1_mlkem1024",
        ("ecp256", "mlkem1024"),
    ),
    Case(
        "x25519+mlkem768+mlkem1024",
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_mlkem1024",
        "aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem1024",
        ("x25519", "mlkem768", "mlkem1024"),
    ),
    Case(
        "x25519+mlkem768@576",
        "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
        "aes256gcm16-x25519-ke1_mlkem768",
        ("x25519", "mlkem768"),
        fragment_size=576,
    ),
]
HYBRID = CASES[1]


@pytest.fixture(scope="module")
def chroot() -> None:
    """The sid chroot with strongSwan 6.1, built if needed: fail loudly if impossible."""
    if os.geteuid() != 0:
        pytest.fail("the strongSwan interop tests need root (debootstrap, chroot, mount)")
    if shutil.which("debootstrap") is None:
        reason = _install("debootstrap")
        if shutil.which("debootstrap") is None:
            pytest.fail(f"debootstrap is needed to build the strongSwan chroot: {reason}")
    try:
        setup_chroot()
    except StrongswanError as error:
        pytest.fail(str(error))


def _charon(case: Case, *, initiator: bool, psk: str = PSK, **extra) -> CharonConfig:
    settings = dict(
        local_ts=INITIATOR_TS if initiator else RESPONDER_TS,
        remote_ts=RESPONDER_TS if initiator else INITIATOR_TS,
    )
    settings.update(extra)
    return CharonConfig(
        name=f"{INSTANCE}-{'i' if initiator else 'r'}",
        port=CHARON_PORT,
        port_nat_t=CHARON_NAT_T_PORT,
        remote_port=WANSIM_PORT,
        proposal=case.ike,
        esp_proposal=case.esp,
        psk=psk,
        local_id=INITIATOR_ID if initiator else RESPONDER_ID,
        remote_id=RESPONDER_ID if initiator else INITIATOR_ID,
        fragment_size=case.fragment_size,
        **settings,
    )


def _wansim(case: Case, *, initiator: bool, psk: str = PSK) -> IkeConfig:
    return IkeConfig(
        ike_proposals=(case.ike,),
        esp_proposals=(case.esp,),
        psk=psk,
        local_id=INITIATOR_ID if initiator else RESPONDER_ID,
        remote_id=RESPONDER_ID if initiator else INITIATOR_ID,
        local_ts=(INITIATOR_TS if initiator else RESPONDER_TS,),
        remote_ts=(RESPONDER_TS if initiator else INITIATOR_TS,),
        fragment_size=case.fragment_size,
    )


def _wansim_initiates(config: IkeConfig, **options) -> SessionResult:
    return asyncio.run(
        initiate(
            config,
            ("127.0.0.1", CHARON_PORT),
            local=("127.0.0.1", WANSIM_PORT),
            always_marker=True,
            nat_t_port=CHARON_NAT_T_PORT,
            timeout_s=20,
            **options,
        )
    )


def _responder(config: IkeConfig, **options) -> ResponderThread:
    return ResponderThread(config, ("127.0.0.1", WANSIM_PORT), always_marker=True, **options)


def _explain(result: SessionResult, charon: Charon) -> str:
    lines = [line for line in charon.log().splitlines() if "[IKE]" in line or "[ENC]" in line]
    return f"wansim: {result.failure}\ncharon log (tail):\n" + "\n".join(lines[-25:])


def _ke_methods(events, kind) -> list[tuple[str, ...]]:
    return [e.ke_methods for e in events if isinstance(e, kind)]


# --- wansim initiator -> charon responder -----------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_wansim_initiator_with_charon_responder(chroot, case):
    with Charon(_charon(case, initiator=False)) as charon:
        result = _wansim_initiates(_wansim(case, initiator=True), rekey_child=True, rekey_ike=True)
        time.sleep(0.05)  # charon logs the last delete just after answering it
        log = charon.log()
    assert result.ok, _explain(result, charon)
    assert _ke_methods(result.events, IkeSaEstablished) == [case.methods]
    assert _ke_methods(result.events, ChildSaRekeyed) == [case.methods]  # PFS + ADDKEs
    assert _ke_methods(result.events, IkeSaRekeyed) == [case.methods]
    # charon agrees: it authenticated us, installed, rekeyed and deleted everything.
    assert f"authentication of '{INITIATOR_ID}' with pre-shared key successful" in log
    assert "CHILD_SA net{1} established" in log
    assert "rekeyed CHILD_SA net{1}" in log
    assert "IKE_SA wansim[2] rekeyed" in log
    assert "received DELETE for IKE_SA wansim[2]" in log
    # Fragments of at most fragment_size - IPv4 - UDP - non-ESP marker bytes (strongSwan).
    limit = case.fragment_size - 20 - 8 - 4
    assert max(b for m in result.sent for b in m.fragment_bytes) <= limit


@pytest.mark.interop
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_charon_initiator_with_wansim_responder(chroot, case):
    responder = _responder(_wansim(case, initiator=False), timeout_s=20)
    with Charon(_charon(case, initiator=True)) as charon:
        up = charon.initiate()
        charon.swanctl("--rekey", "--child", "net")
        _wait_for(charon, "rekeyed CHILD_SA net{1}")
        charon.swanctl("--rekey", "--ike", "wansim")
        _wait_for(charon, "IKE_SA wansim[2] rekeyed")
        charon.swanctl("--terminate", "--ike", "wansim", "--timeout", "5")
        result = responder.join()
        log = charon.log()
    assert up.returncode == 0, up.output
    assert result.ok, _explain(result, charon)
    assert _ke_methods(result.events, IkeSaEstablished) == [case.methods]
    assert _ke_methods(result.events, ChildSaRekeyed) == [case.methods]
    assert _ke_methods(result.events, IkeSaRekeyed) == [case.methods]
    assert f"authentication of '{RESPONDER_ID}' with pre-shared key successful" in log
    assert "IKE_SA wansim[2] rekeyed" in log
    limit = case.fragment_size - 20 - 8 - 4
    assert max(b for m in result.sent for b in m.fragment_bytes) <= limit


def _charon_initiates_once(peer: CharonConfig, responder: ResponderThread):
    """charon brings the tunnel up and tears it down against `responder`: (wansim's
    result, charon's log), both checked to have succeeded."""
    with Charon(peer) as charon:
        up = charon.initiate()
        charon.swanctl("--terminate", "--ike", "wansim", "--timeout", "5")
        result = responder.join()
        log = charon.log()
    assert up.returncode == 0, up.output
    assert result.ok, _explain(result, charon)
    return result, log


def _wait_for(charon: Charon, text: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in charon.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"charon never logged {text!r}:\n{charon.log()[-3000:]}")
        time.sleep(0.05)


# --- failures, cookies, and an independent parser ----------------------------------------------


@pytest.mark.interop
def test_wrong_psk_fails_cleanly_when_wansim_initiates(chroot):
    with Charon(_charon(HYBRID, initiator=False)) as charon:
        result = _wansim_initiates(_wansim(HYBRID, initiator=True, psk="not-the-psk"))
        log = charon.log()
    assert not result.ok and "AUTHENTICATION_FAILED" in result.failure
    assert "but MAC mismatched" in log
    assert "generating IKE_AUTH response 2 [ N(AUTH_FAILED) ]" in log
    assert "IKE_SA wansim[1] established" not in log


@pytest.mark.interop
def test_wrong_psk_fails_cleanly_when_charon_initiates(chroot):
    responder = _responder(_wansim(HYBRID, initiator=False, psk="not-the-psk"), timeout_s=8)
    with Charon(_charon(HYBRID, initiator=True)) as charon:
        up = charon.initiate(timeout_s=8)
        result = responder.join()
        log = charon.log()
    assert up.returncode != 0
    assert "received AUTHENTICATION_FAILED notify error" in log
    assert not result.ok and "authentication failed (we:" in result.failure
    assert not any(isinstance(e, IkeSaEstablished) for e in result.events)


def _leave_half_open_sa() -> None:
    """One IKE_SA_INIT to charon that is never continued: a half-open SA from 127.0.0.1."""
    local, charon = ("127.0.0.1", SPARE_PORT), ("127.0.0.1", CHARON_PORT)
    sa = IkeSa(_wansim(HYBRID, initiator=True), initiator=True, local_addr=local,
               remote_addr=charon)  # fmt: skip
    sa.initiate(0.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(local)
        sock.settimeout(5)
        for data, dest in sa.datagrams_to_send(0.0):
            sock.sendto(NON_ESP_MARKER + data, dest)
        sock.recvfrom(65535)  # charon's IKE_SA_INIT response: the SA is now half-open


@pytest.mark.interop
def test_wansim_answers_charons_cookie_challenge(chroot):
    # cookie_threshold_ip = 1: charon demands a COOKIE from the 2nd half-open SA per address.
    with Charon(_charon(HYBRID, initiator=False, cookie_threshold_ip=1)) as charon:
        _leave_half_open_sa()
        result = _wansim_initiates(_wansim(HYBRID, initiator=True))
        log = charon.log()
    assert result.ok, _explain(result, charon)
    assert sum(isinstance(e, CookieDemanded) for e in result.events) == 1
    assert log.count("generating IKE_SA_INIT response 0 [ N(COOKIE) ]") == 1
    init_requests = [m for m in result.sent if m.exchange == "IKE_SA_INIT" and not m.response]
    assert len(init_requests) == 2  # the first, and the one carrying the COOKIE


@pytest.mark.interop
def test_charon_answers_wansims_cookie_challenge(chroot):
    responder = _responder(_wansim(HYBRID, initiator=False), cookie_threshold=0, timeout_s=20)
    result, log = _charon_initiates_once(_charon(HYBRID, initiator=True), responder)
    assert sum(isinstance(e, CookieDemanded) for e in result.events) == 1
    assert "parsed IKE_SA_INIT response 0 [ N(COOKIE) ]" in log
    assert "generating IKE_SA_INIT request 0 [ N(COOKIE) SA KE" in log


@pytest.mark.interop
def test_tshark_decodes_and_decrypts_a_real_conversation(chroot, tmp_path):
    """Both sides' messages, as captured by our driver, parse and decrypt in tshark."""
    with Charon(_charon(HYBRID, initiator=False)) as charon:
        result = _wansim_initiates(
            _wansim(HYBRID, initiator=True), rekey_child=True, rekey_ike=True
        )
    assert result.ok, _explain(result, charon)
    path = tmp_path / "interop.pcap"
    path.write_bytes(pcap_bytes(result.capture, marker_ports=()))
    ports = {port: "udpencap" for port in (CHARON_PORT, CHARON_NAT_T_PORT, WANSIM_PORT)}
    frames = ike_frames(path, key_lines=result.key_lines, decode_as=ports)
    assert len(frames) == len(result.capture)
    assert not any(f.malformed for f in frames)
    assert all(f.decrypted is not None for f in frames if f.exchange_type != 34)
    requests = [f for f in frames if not f.is_response and f.fragment in (None, (1, 2))]
    # IKE_SA_INIT, IKE_INTERMEDIATE, IKE_AUTH, Child rekey (CREATE_CHILD_SA + IKE_FOLLOWUP_KE),
    # Delete of the old Child SA, IKE rekey (+ IKE_FOLLOWUP_KE), Delete old IKE SA, Delete.
    assert [f.exchange_type for f in requests] == [34, 43, 35, 36, 44, 37, 36, 44, 37, 37]


def _signing_pair(token: str, *, wansim_initiates: bool):
    """(charon config, wansim config, wansim's credentials) for certificate auth: each side
    has its own key and certificate, and charon pins ours."""
    ids = (INITIATOR_ID, RESPONDER_ID) if wansim_initiates else (RESPONDER_ID, INITIATOR_ID)
    ours, theirs = (pubkey_credentials(token, identity) for identity in ids)
    peer = _charon(
        HYBRID, initiator=not wansim_initiates, auth="pubkey", local_cert_pem=theirs[3],
        local_key_pem=theirs[2], remote_cert_pem=ours[3],
    )  # fmt: skip
    config = _wansim(HYBRID, initiator=wansim_initiates)
    return peer, config.model_copy(update={"auth": token, "psk": ""}), ours[:2]


@pytest.mark.interop
@pytest.mark.parametrize("token, charon_name", [("ecdsa-p256", "SHA256"), ("ecdsa-p384", "SHA384")])
def test_signature_auth_with_charon(chroot, token, charon_name):
    """RFC 7427 Digital Signature auth with certificates in CERT payloads, both directions
    of trust: charon pins our certificate, we take its (wansim models no PKI). ML-DSA cannot
    be tried: sid's strongSwan 6.1.0 has no ML-DSA in any plugin."""
    peer, config, ours = _signing_pair(token, wansim_initiates=True)
    with Charon(peer) as charon:
        result = _wansim_initiates(config, credentials=ours, rekey_child=True)
        log = charon.log()
    assert result.ok, _explain(result, charon)
    assert f"authentication of '{INITIATOR_ID}' with ECDSA_WITH_{charon_name}_DER successful" in log
    assert "parsed IKE_AUTH request 2 [ IDi CERT N(INIT_CONTACT) IDr AUTH" in log
    assert "generating IKE_AUTH response 2 [ IDr CERT AUTH SA TSi TSr ]" in log
    assert _ke_methods(result.events, ChildSaRekeyed) == [HYBRID.methods]


@pytest.mark.interop
def test_signature_auth_when_charon_initiates(chroot):
    """The other direction: charon initiates with its certificate, wansim's Gateway
    answers signing with the one certificate it was given."""
    peer, config, ours = _signing_pair("ecdsa-p256", wansim_initiates=False)
    responder = _responder(config, timeout_s=20, credentials=ours)
    result, log = _charon_initiates_once(peer, responder)
    assert _ke_methods(result.events, IkeSaEstablished) == [HYBRID.methods]
    assert f"authentication of '{RESPONDER_ID}' with ECDSA_WITH_SHA256_DER successful" in log
    assert "parsed IKE_AUTH response 2 [ IDr CERT AUTH" in log


# --- the CLI against charon ---------------------------------------------------------------------


WANSIM = str(Path(sys.executable).with_name("wansim"))  # the venv's console script


def _cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [WANSIM, "interop", *args],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def _cli_options(case: Case, psk_file, *, initiator: bool) -> list[str]:
    i = 0 if initiator else 1
    ids, ts = (INITIATOR_ID, RESPONDER_ID), (INITIATOR_TS, RESPONDER_TS)
    return [
        "--proposal", case.ike, "--esp-proposal", case.esp, "--psk-file", str(psk_file),
        "--local-id", ids[i], "--remote-id", ids[1 - i], "--local-ts", ts[i],
        "--remote-ts", ts[1 - i], "--nat-t-marker", "--timeout", "20",
    ]  # fmt: skip


@pytest.mark.interop
def test_cli_initiate_exits_0_or_names_the_notify(chroot, tmp_path):
    good, bad = tmp_path / "psk", tmp_path / "wrong-psk"
    good.write_text(PSK + "\n")
    bad.write_text("not-the-psk\n")
    common = [f"127.0.0.1:{CHARON_PORT}", "--local", f"127.0.0.1:{WANSIM_PORT}",
              "--nat-t-port", str(CHARON_NAT_T_PORT)]  # fmt: skip
    with Charon(_charon(HYBRID, initiator=False)):
        refused = _cli("initiate", *common, *_cli_options(HYBRID, bad, initiator=True))
        done = _cli(
            "initiate", *common, *_cli_options(HYBRID, good, initiator=True), "--rekey-child",
            "--pcap", str(tmp_path / "run.pcap"), "--keys", str(tmp_path / "run.keys"),
        )  # fmt: skip
    assert refused.returncode == 1
    assert "AUTHENTICATION_FAILED" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok"
    assert lines[0].startswith("IKE_SA_INIT") and "request   248 B in 1 dgram" in lines[0]
    assert lines[1].startswith("IKE_INTERMEDIATE") and "request  1314 B in 2 dgram" in lines[1]
    assert any(line.startswith("IKE_FOLLOWUP_KE") for line in lines)
    assert len((tmp_path / "run.keys").read_text().splitlines()) == 2  # SA_INIT + ML-KEM
    assert (tmp_path / "run.pcap").stat().st_size > 24 + 9 * 16


@pytest.mark.interop
def test_cli_respond_until_the_peer_deletes(chroot, tmp_path):
    psk = tmp_path / "psk"
    psk.write_text(PSK + "\n")
    server = subprocess.Popen(
        [WANSIM, "interop", "respond", f"127.0.0.1:{WANSIM_PORT}",
         *_cli_options(HYBRID, psk, initiator=False)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_until_bound(WANSIM_PORT)
        with Charon(_charon(HYBRID, initiator=True)) as charon:
            up = charon.initiate()
            charon.swanctl("--terminate", "--ike", "wansim", "--timeout", "5")
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert up.returncode == 0, up.output
    assert server.returncode == 0, err
    assert out.splitlines()[-1] == "ok" and "IKE_AUTH" in out


def _wait_until_bound(port: int, timeout_s: float = 20) -> None:
    """Until a UDP socket is bound to 127.0.0.1:`port` (the CLI needs a moment to import).
    Reads /proc/net/udp rather than probing with bind(), which could steal the port."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open("/proc/net/udp") as table:
            if any(line.split()[1] == wanted for line in list(table)[1:]):
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing bound UDP 127.0.0.1:{port} within {timeout_s} s")


# --- without charon: wansim to wansim over real UDP, and CLI input errors -----------------------


@pytest.mark.parametrize("float_to_nat_t", [False, True], ids=["port-as-given", "floated"])
def test_wansim_to_wansim_over_udp_loopback(float_to_nat_t):
    """The driver on real sockets: a hybrid handshake and both rekeys between two engines.
    Floated: the initiator moves to "4500" after IKE_SA_INIT, which the driver maps onto
    the responder's real port, with the non-ESP marker on every datagram."""
    responder = ResponderThread(
        _wansim(HYBRID, initiator=False), ("127.0.0.1", 0), always_marker=float_to_nat_t,
        timeout_s=20,
    )  # fmt: skip
    port = responder.local_addr[1]
    config = _wansim(HYBRID, initiator=True)
    if float_to_nat_t:
        config = config.model_copy(update={"port_4500": "always"})
    result = asyncio.run(
        initiate(
            config, ("127.0.0.1", port), always_marker=float_to_nat_t,
            nat_t_port=port if float_to_nat_t else None, rekey_child=True, rekey_ike=True,
            timeout_s=20,
        )
    )  # fmt: skip
    answered = responder.join()
    assert result.ok, result.failure
    assert answered.ok, answered.failure
    established = [e for e in result.events if isinstance(e, IkeSaEstablished)]
    assert [e.ke_methods for e in established] == [("x25519", "mlkem768")]
    assert established[0].port == (4500 if float_to_nat_t else 500)  # the engine's view
    assert _ke_methods(answered.events, IkeSaRekeyed) == [("x25519", "mlkem768")]
    marked = [d.payload.startswith(NON_ESP_MARKER) for d in result.capture]
    assert all(marked) if float_to_nat_t else not any(marked)
    # Both ends derived the same key sets, in the same order.
    assert result.key_lines == answered.key_lines and len(result.key_lines) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["initiate", "localhost:500"], "not an IPv4 address"),
        (["initiate", "127.0.0.1"], "not ADDRESS:PORT"),
        (["initiate", "127.0.0.1:500", "--proposal", "aes256gcm16-prfsha256-x25520"], "x25520"),
        (["respond", "127.0.0.1:0", "--fragment-size", "100"], "100"),
    ],
)
def test_cli_rejects_bad_input_with_exit_2(tmp_path, args, message):
    psk = tmp_path / "psk"
    psk.write_text("secret\n")
    base = ["--esp-proposal", "aes256gcm16", "--psk-file", str(psk), "--local-id", "a.example",
            "--remote-id", "b.example"]  # fmt: skip
    if "--proposal" not in args:
        base += ["--proposal", "aes256gcm16-prfsha256-x25519"]
    done = CliRunner().invoke(main, ["interop", *args, *base])
    assert done.exit_code == 2
    assert message in done.output


# --- charon's config and log, without charon ----------------------------------------------------

# Lines as charon 6.1 logs them (enc/net at level 1), trimmed from a fragment_size 576 run.
CHARON_LOG = """\
05:35:23.790 01[ENC] generating IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]
05:35:23.790 01[NET] sending packet: from 127.0.0.1[45701] to 127.0.0.1[45600] (248 bytes)
05:35:23.829 11[ENC] generating IKE_INTERMEDIATE request 1 [ KE ]
05:35:23.829 11[ENC] splitting IKE message (1249 bytes) into 3 fragments
05:35:23.829 11[ENC] generating IKE_INTERMEDIATE request 1 [ EF(1/3) ]
05:35:23.829 11[ENC] generating IKE_INTERMEDIATE request 1 [ EF(2/3) ]
05:35:23.829 11[ENC] generating IKE_INTERMEDIATE request 1 [ EF(3/3) ]
05:35:23.829 11[NET] sending packet: from 127.0.0.1[45701] to 127.0.0.1[45600] (544 bytes)
05:35:23.829 11[NET] sending packet: from 127.0.0.1[45701] to 127.0.0.1[45600] (544 bytes)
05:35:23.830 04[NET] received packet: from 127.0.0.1[45600] to 127.0.0.1[45701] (544 bytes)
05:35:23.829 11[NET] sending packet: from 127.0.0.1[45701] to 127.0.0.1[45600] (287 bytes)
05:35:27.830 12[IKE] retransmit 1 of request with message ID 2
05:35:27.830 12[NET] sending packet: from 127.0.0.1[45701] to 127.0.0.1[45600] (279 bytes)
05:35:28.013 01[ENC] generating INFORMATIONAL response 8 [ ]
05:35:28.013 01[NET] sending packet: from 127.0.0.1[45701] to 127.0.0.1[45600] (57 bytes)
"""


def test_sent_messages_reads_sizes_fragments_and_skips_retransmissions():
    sent = sent_messages(CHARON_LOG)
    assert [(m.exchange, m.message_id, m.is_response, m.datagram_bytes) for m in sent] == [
        ("IKE_SA_INIT", 0, False, (248,)),
        ("IKE_INTERMEDIATE", 1, False, (544, 544, 287)),
        ("INFORMATIONAL", 8, True, (57,)),
    ]
    assert sent[0].payloads == "SA KE No N(NATD_S_IP) N(NATD_D_IP)"
    assert sent[1].message_bytes == 1249 and sent[2].payloads == ""


def test_charon_config_renders_and_refuses_unsafe_values():
    config = _charon(HYBRID, initiator=False, cookie_threshold_ip=1)
    settings = config.strongswan_conf("/var/lib/wansim-charon/x")
    assert f"port = {CHARON_PORT}" in settings and "port_nat_t" in settings
    assert "cookie_threshold_ip = 1" in settings and "fragment_size = 1280" in settings
    assert "kernel-libipsec" in settings and "install_routes = no" in settings
    connection = config.swanctl_conf()
    assert f"proposals = {HYBRID.ike}" in connection and "local_addrs = 127.0.0.1" in connection
    assert f'secret = "{PSK}"' in connection
    with pytest.raises(ValueError, match="outside"):
        _charon(HYBRID, initiator=False, local_ts="192.0.2.0/24")  # this host's own subnet
    with pytest.raises(ValueError, match="unsafe"):
        _charon(HYBRID, initiator=False, psk='x" } include /etc/passwd {')
