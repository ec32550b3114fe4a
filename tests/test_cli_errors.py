"""CLI bad input found in user-acceptance runs: exit code 2 and a message naming the option."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from wansim.cli import main

ROOT = Path(__file__).resolve().parents[1]

CLASSICAL = "aes256gcm16-prfsha384-ecp384"


def test_handshake_pcap_into_missing_folder_is_bad_input(tmp_path) -> None:
    for option in ("--pcap", "--keys"):
        target = tmp_path / "no-such-folder" / "out"
        result = CliRunner().invoke(main, ["handshake", CLASSICAL, option, str(target)])
        assert result.exit_code == 2, result.output
        assert f"'{option}'" in result.output and "cannot write" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_handshake_esp_proposal_typo_names_the_esp_option() -> None:
    result = CliRunner().invoke(main, ["handshake", CLASSICAL, "--esp-proposal", "aes256gcm61"])
    assert result.exit_code == 2
    assert "'--esp-proposal'" in result.output and "aes256gcm61" in result.output


def test_handshake_ike_proposal_typo_names_the_proposal() -> None:
    result = CliRunner().invoke(main, ["handshake", CLASSICAL + "-ke1_mlkme768"])
    assert result.exit_code == 2
    assert "PROPOSAL" in result.output and "mlkme768" in result.output


def test_report_of_a_missing_folder_says_so(tmp_path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no such results folder" in result.output
    empty = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert empty.exit_code == 2 and "neither a wansim run" in empty.output


def test_typo_in_a_bundled_experiment_name_suggests_the_right_one() -> None:
    for verb in (["validate"], ["run"], ["sweep", "--out", "unused"]):
        result = CliRunner().invoke(main, [verb[0], "quikstart", *verb[1:]])
        assert result.exit_code == 2, result.output
        assert "did you mean 'quickstart'?" in result.output
        assert "pop_failover" in result.output  # the bundled names are listed


def test_cost_profile_given_by_set_is_relative_to_the_current_directory(
    tmp_path, monkeypatch
) -> None:
    from wansim.experiment import load_experiment
    from wansim.experiment.bundled import resolve

    monkeypatch.chdir(tmp_path)
    config = load_experiment(resolve("quickstart"), ["pop.cost_profile=costs.json"])
    assert config.pop.cost_profile == str(tmp_path / "costs.json")


def test_missing_or_malformed_cost_profile_is_bad_input(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    for name in ("missing.json", "broken.json"):
        setting = ["--set", f"pop.cost_profile={name}"]
        result = CliRunner().invoke(main, ["validate", "quickstart", *setting])
        assert result.exit_code == 2, result.output
        assert name in result.output and "internal error" not in result.output
    tiny = ["--set", "sites.count=2", "--set", "run.duration=1m"]
    result = CliRunner().invoke(main, ["run", "quickstart", "--out", "r", *setting, *tiny])
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and not (tmp_path / "r").exists()


def test_list_wraps_descriptions_under_the_name_column(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert all(len(line) <= 90 for line in lines)
    names = [line.split()[0] for line in lines if not line.startswith(" ")]
    assert {"quickstart", "pop_failover", "capacity_plan"} <= set(names)


def test_bad_sites_csv_is_reported_by_validate_and_run(tmp_path) -> None:
    experiment = tmp_path / "perth.toml"
    experiment.write_text((ROOT / "experiments" / "perth_second_addke.toml").read_text())
    (tmp_path / "perth-sites.csv").write_text("name,lat,lon\nperth,-31.95,215.86\n")
    for verb in (["validate"], ["run", "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(main, [verb[0], str(experiment), *verb[1:]])
        assert result.exit_code == 2, result.output
        assert "sites.file" in result.output and "field 'lon'" in result.output
    assert not (tmp_path / "out").exists()
    (tmp_path / "perth-sites.csv").unlink()
    result = CliRunner().invoke(main, ["validate", str(experiment)])
    assert result.exit_code == 2 and "cannot read sites file" in result.output


def test_calibrate_with_an_explicit_backend_that_runs_nothing_is_bad_input(tmp_path) -> None:
    import pytest

    from wansim.crypto import unavailable_reason

    if unavailable_reason("mlkem768", "liboqs") is None:
        pytest.skip("native liboqs is present here, so --backend liboqs runs ML-KEM")
    output = tmp_path / "costs.json"
    result = CliRunner().invoke(main, ["calibrate", "--backend", "liboqs", "-o", str(output)])
    assert result.exit_code == 2, result.output
    assert "OQS_INSTALL_PATH" in result.output and not output.exists()


def test_interop_respond_on_a_port_in_use_is_one_line_bad_input(tmp_path) -> None:
    import socket

    psk = tmp_path / "psk"
    psk.write_text("secret\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, [
            "interop", "respond", f"127.0.0.1:{port}", "--proposal", CLASSICAL,
            "--esp-proposal", "aes256gcm16", "--psk-file", str(psk),
            "--local-id", "a", "--remote-id", "b", "--timeout", "2",
        ])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{port}" in result.output and "Traceback" not in result.output


def test_interop_proposal_typo_names_the_option(tmp_path) -> None:
    psk = tmp_path / "psk"
    psk.write_text("secret\n")
    result = CliRunner().invoke(main, [
        "interop", "initiate", "127.0.0.1:500", "--proposal", CLASSICAL + "-ke1_mlkme768",
        "--esp-proposal", "aes256gcm16", "--psk-file", str(psk), "--local-id", "a",
        "--remote-id", "b",
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "--proposal: IKE proposal" in result.output and "Value error" not in result.output
