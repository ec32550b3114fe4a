"""The HTML report in a real browser: headless Chromium loads it without a console message,
every embedded plot decodes to a non-empty image, and a screenshot is kept."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.sysdeps import require_program
from tests.test_report_fixtures import shared_run

pytestmark = pytest.mark.system

# Runs after the page's load event: how many plot images exist and how many decoded.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.querySelectorAll("img.plot")];
  const loaded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  const out = document.createElement("pre");
  out.id = "wansim-probe";
  out.textContent = JSON.stringify({images: images.length, loaded: loaded});
  document.body.appendChild(out);
});
</script>
</body>"""


def chromium(program: str, profile, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=10000",
    ]
    return subprocess.run([program, *flags, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    """Chromium logs every console message and uncaught error as an INFO:CONSOLE line."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_in_chromium(tmp_path, tmp_path_factory):
    program = require_program("chromium")
    report = shared_run(tmp_path_factory)[1]
    html = report.html.read_text()
    plots = html.count('<img class="plot"')
    assert plots >= 7

    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE, 1))
    done = chromium(program, tmp_path / "profile-dom", "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="wansim-probe">([^<]*)</pre>', done.stdout)
    assert match, "the probe did not run: " + done.stderr[-2000:]
    assert json.loads(match.group(1)) == {"images": plots, "loaded": plots}
    assert console_messages(done.stderr) == []

    screenshot = tmp_path / "report.png"
    shot = chromium(program, tmp_path / "profile-shot", "--window-size=1400,4000",
                    f"--screenshot={screenshot}", report.html.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_messages(shot.stderr) == []
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 50_000


def test_the_probe_catches_a_broken_plot_and_a_console_error(tmp_path):
    """Negative control: the same checks fail on a page with a corrupt image and a script
    error, so a pass above means something."""
    program = require_program("chromium")
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img class="plot" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==">'
        "<script>undefined_function();</script>" + PROBE.removesuffix("</body>")
        + "</body></html>"
    )
    done = chromium(program, tmp_path / "profile", "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="wansim-probe">([^<]*)</pre>', done.stdout)
    assert match, done.stderr[-2000:]
    assert json.loads(match.group(1)) == {"images": 1, "loaded": 0}
    assert any("undefined_function" in line for line in console_messages(done.stderr))
