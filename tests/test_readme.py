"""README examples run (STYLE.md): its Python blocks execute, its commands parse.

A new user copies from the README first; a block that fails there is the first bug they
meet. The Python blocks run in order in one fresh interpreter from the repository root
(later blocks use earlier names, as a reader would). Every `wansim …` line in a code block
is parsed by the real click commands without running them, every verb the CLI has is in the
README's table with a working `--help`, and every `make` target the README shows exists.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from wansim.cli import VERBS, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)


def _commands(prefix: str) -> list[str]:
    """Command lines starting with `prefix` in the README's shell code blocks."""
    lines = []
    for language, body in BLOCKS:
        if language not in ("sh", "shell", "bash", "console", ""):
            continue
        for line in body.splitlines():
            line = line.split("  #")[0].strip().removeprefix("$ ").removeprefix("sudo ")
            if line.startswith(prefix + " "):
                lines.append(line)
    return lines


def test_readme_has_examples_to_check() -> None:
    assert [body for language, body in BLOCKS if language == "python"]
    assert _commands("wansim") and _commands("make")


def test_python_blocks_run_in_order() -> None:
    code = "\n\n".join(body for language, body in BLOCKS if language == "python")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("line", _commands("wansim"))
def test_wansim_commands_in_code_blocks_parse(line: str) -> None:
    words = shlex.split(line)[1:]
    command: click.Command = main
    context = None
    while isinstance(command, click.Group):  # walk down to the leaf command (interop initiate)
        context = click.Context(command, info_name=command.name, parent=context)
        name, words = words[0], words[1:]
        command = command.get_command(context, name)
        assert command is not None, f"{line}: no verb {name!r}"
    # Parses and type-checks every argument and option; the command body does not run.
    command.make_context(command.name, list(words), parent=context)


def test_every_verb_is_in_the_readme_and_its_help_works() -> None:
    documented = set(re.findall(r"^\| `wansim (\w+)", README, flags=re.M))
    assert documented == set(VERBS), "README's command table and the CLI's verbs differ"
    for verb in VERBS:
        result = CliRunner().invoke(main, [verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Usage:" in result.output


def test_make_targets_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    for line in _commands("make"):
        target = shlex.split(line)[1]
        assert target in targets, f"README shows `{line}` but the Makefile has no {target!r}"


def test_files_the_readme_names_exist() -> None:
    for name in re.findall(r"experiments/(\w+\.toml)", README):
        assert (ROOT / "experiments" / name).is_file(), name
    for name in re.findall(r"notebooks/(\w+)\.ipynb", README):
        assert (ROOT / "notebooks" / f"{name}.ipynb").is_file(), name


def test_start_here_commands_in_wansim_help_parse() -> None:
    lines = [line.strip() for line in (main.help or "").splitlines()]
    commands = [re.split(r"\s{2,}", line)[0] for line in lines if line.startswith("wansim ")]
    assert len(commands) >= 3
    for command in commands:
        test_wansim_commands_in_code_blocks_parse(command)


def test_readme_claim_port_4500_marker_fragments_the_mlkem768_request() -> None:
    """README, question 1: the non-ESP marker pushes the IKE_INTERMEDIATE request over 1280."""
    import json

    proposal = "aes256gcm16-prfsha384-ecp384-ke1_mlkem768"
    fragments = {}
    for extra in ([], ["--port-4500"]):
        result = CliRunner().invoke(main, ["handshake", proposal, "--json", *extra])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)
        request = next(r for r in rows
                       if r["exchange"] == "IKE_INTERMEDIATE" and not r["response"])  # fmt: skip
        fragments[bool(extra)] = (request["fragments"], request["ip_bytes"])
    assert fragments[False][0] == 1 and fragments[False][1] <= 1280
    assert fragments[True][0] == 2
