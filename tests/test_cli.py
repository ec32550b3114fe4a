"""The CLI shell: every registered verb resolves and has help text."""

from click.testing import CliRunner

from wansim.cli import VERBS, main


def test_every_verb_imports_and_has_help():
    runner = CliRunner()
    for verb in VERBS:
        result = runner.invoke(main, [verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Usage:" in result.output


def test_unknown_verb_is_a_usage_error():
    result = CliRunner().invoke(main, ["no-such-verb"])
    assert result.exit_code == 2
