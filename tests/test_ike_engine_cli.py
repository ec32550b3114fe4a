"""`wansim handshake`: rows, JSON, pcap/keys files and exit codes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from wansim.cli import main


def test_json_rows_describe_every_message(tmp_path):
    pcap, keys = tmp_path / "h.pcap", tmp_path / "h.keys"
    result = CliRunner().invoke(
        main,
        ["handshake", "aes256gcm16-prfsha256-x25519-ke1_mlkem768", "--port-4500", "--json",
         "--pcap", str(pcap), "--keys", str(keys)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["exchange"], r["direction"], r["message_id"]) for r in rows] == [
        ("IKE_SA_INIT", "I->R", 0), ("IKE_SA_INIT", "R->I", 0),
        ("IKE_INTERMEDIATE", "I->R", 1), ("IKE_INTERMEDIATE", "R->I", 1),
        ("IKE_AUTH", "I->R", 2), ("IKE_AUTH", "R->I", 2),
    ]  # fmt: skip
    inter = rows[2]
    # 1248 + 66 IKE bytes in two fragments, + marker, UDP and IPv4 headers per datagram
    assert (inter["ike_bytes"], inter["fragments"]) == (1314, 2)
    assert (inter["udp_bytes"], inter["ip_bytes"]) == (1322, 1378)
    assert rows[0]["payloads"].startswith("SA, KE(CURVE25519), Nonce")
    assert pcap.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")  # pcap, ns timestamps
    assert len(keys.read_text().splitlines()) == 2


def test_table_with_rekeys_and_bad_input():
    runner = CliRunner()
    result = runner.invoke(main, ["handshake", "aes256gcm16-prfsha256-x25519", "--rekey"])
    assert result.exit_code == 0, result.output
    assert "CREATE_CHILD_SA" in result.output and "after 2 round trips" in result.output
    bad = runner.invoke(main, ["handshake", "aes256gcm16-prfsha256-x448"])
    assert bad.exit_code == 2 and "x448" in bad.output
    bad = runner.invoke(main, ["handshake", "aes256gcm16-prfsha256-x25519", "--fragment-size", "9"])
    assert bad.exit_code == 2
