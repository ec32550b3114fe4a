"""Write the report: one self-contained HTML file and a PDF with the same sections.

The HTML embeds every figure as a base64 PNG and has no external resource, so it can be
mailed or archived as one file. The PDF is laid out by matplotlib (``PdfPages``): a text
page per section followed by its figures; no network, no external tool.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

import wansim
from wansim.report.data import ReportData, read_report_data
from wansim.report.sections import Section, analyse, build_sections
from wansim.sim.results import Results

DEFAULT_TARGET_S = 1.0
"""p99 handshake latency target for the core recommendation, unless given."""
_DPI = 100
_PAGE = (11.69, 8.27)  # A4 landscape, inches


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`build_report` wrote."""

    html: Path
    pdf: Path
    capacity_csv: Path

    def __str__(self) -> str:
        return f"{self.html} and {self.pdf}"


def build_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    target_s: float = DEFAULT_TARGET_S,
) -> ReportPaths:
    """Write ``report.html``, ``report.pdf`` and ``capacity.csv`` for a run or sweep folder.

    ``out_dir`` defaults to ``results_dir/report``. ``target_s`` is the p99 handshake
    latency the recommended cores must meet during each POP's worst neighbour failure.
    """
    if not target_s > 0:
        raise ValueError(f"the latency target must be positive, got {target_s!r}")
    data = read_report_data(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    analysis = analyse(data, target_s)
    sections = build_sections(data, analysis)
    paths = ReportPaths(out / "report.html", out / "report.pdf", out / "capacity.csv")
    analysis.capacity_all.to_csv(paths.capacity_csv, index=False)
    paths.html.write_text(render_html(data, sections), encoding="utf-8")
    write_pdf(data, sections, paths.pdf)
    return paths


def capacity_report(
    source: str | Path | Results, *, target_s: float = DEFAULT_TARGET_S
) -> pd.DataFrame:
    """The N+1 table with recommended cores, one row per POP (its worst strategy and sweep
    point), with the POP's city, lat and lon: what the report shows, as a DataFrame.

    ``source`` is a run or sweep folder, or the Results of :func:`wansim.simulate`.
    See :mod:`wansim.report.capacity` for the model.
    """
    analysis = analyse(read_report_data(source), target_s)
    if analysis.capacity.empty:
        return analysis.capacity
    places = analysis.pops[["pop", "city", "lat", "lon"]]
    return analysis.capacity.merge(places, on="pop", how="left")


# --------------------------------------------------------------------------- HTML
def png_base64(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_html(data: ReportData, sections: list[Section]) -> str:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    context = [
        {
            "id": s.id,
            "title": s.title,
            "note": s.note,
            "paragraphs": s.paragraphs,
            "bullets": s.bullets,
            "figures": [{"png": png_base64(f), "caption": c} for f, c in s.figures],
            "tables": [{"caption": c, "html": t.to_html(index=False, border=0, na_rep="–")}
                       for c, t in s.tables],
            "code": s.code,
        }
        for s in sections
    ]
    return env.get_template("report.html.j2").render(
        title=data.name, description=data.description, kind=data.kind, path=str(data.path),
        version=wansim.__version__, sections=context,
    )


# --------------------------------------------------------------------------- PDF
def write_pdf(data: ReportData, sections: list[Section], path: Path) -> None:
    with PdfPages(path) as pdf:
        info = pdf.infodict()
        info["Title"] = f"wansim report: {data.name}"
        info["Creator"] = f"wansim {wansim.__version__}"
        for section in sections:
            pdf.savefig(_text_page(section, data if section.id == "summary" else None))
            for fig, caption in section.figures:
                fig.suptitle(f"{section.title}: {caption}", fontsize=10)
                pdf.savefig(fig)
            for caption, table in section.tables:
                for page in _table_pages(section.title, caption, table):
                    pdf.savefig(page)
            if section.code:
                for page in _code_pages(section.title, section.code):
                    pdf.savefig(page)


def _text_page(section: Section, data: ReportData | None) -> Figure:
    fig = Figure(figsize=_PAGE)
    lines: list[tuple[str, float, str]] = []  # text, size, weight
    if data is not None:
        lines.append((f"wansim report: {data.name}", 18, "bold"))
        for line in textwrap.wrap(data.description, 120):
            lines.append((line, 10, "normal"))
        lines.append(("", 8, "normal"))
    lines.append((section.title, 15, "bold"))
    if section.note:
        lines.append((section.note, 11, "bold"))
    for paragraph in section.paragraphs:
        lines += [(line, 9.5, "normal") for line in textwrap.wrap(paragraph, 140)]
        lines.append(("", 5, "normal"))
    for bullet in section.bullets:
        wrapped = textwrap.wrap(bullet, 135)
        lines += [(("• " if i == 0 else "  ") + line, 10, "normal")
                  for i, line in enumerate(wrapped)]
    y = 0.95
    for text, size, weight in lines:
        fig.text(0.05, y, text, fontsize=size, fontweight=weight, va="top")
        y -= size / 72 / _PAGE[1] * 1.45
    return fig


def _cell(value: object) -> str:
    """A PDF table cell: missing values as "–" like the HTML table (pandas 3's astype(str)
    keeps NaN), long ones cut."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    text = "–" if missing else str(value)
    return text if len(text) <= 48 else text[:45] + "…"


def _table_pages(title: str, caption: str, table: pd.DataFrame, rows: int = 28):
    if table.empty:
        return
    text = table.map(_cell)
    for start in range(0, len(text), rows):
        fig = Figure(figsize=_PAGE)
        fig.suptitle(f"{title}: {caption}", fontsize=11)
        ax = fig.add_axes((0.03, 0.03, 0.94, 0.88))
        ax.set_axis_off()
        chunk = text.iloc[start : start + rows]
        drawn = ax.table(cellText=chunk.to_numpy(), colLabels=list(chunk.columns),
                         loc="upper center", cellLoc="left")
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(7 if len(chunk.columns) > 8 else 8)
        drawn.auto_set_column_width(list(range(len(chunk.columns))))
        yield fig


def _code_pages(title: str, code: str, per_column: int = 75, columns: int = 3):
    lines = code.splitlines()
    per_page = per_column * columns
    for start in range(0, len(lines), per_page):
        fig = Figure(figsize=_PAGE)
        fig.suptitle(f"{title}: resolved configuration", fontsize=11)
        page = lines[start : start + per_page]
        for c in range(columns):
            block = "\n".join(page[c * per_column : (c + 1) * per_column])
            fig.text(0.03 + c * 0.33, 0.93, block, family="monospace", fontsize=5.5, va="top")
        yield fig
