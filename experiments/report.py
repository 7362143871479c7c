"""Report writing shared by the experiment drivers: figures saved and linked, markdown tables,
``mean [90% band]`` metrics and cells, ``report.md``, CSV tables.

A driver computes first (plain numbers and arrays, no files) and then writes its run directory
with these helpers. Figures are drawn off-screen (Agg backend), straight into files. Every file
is written whole or not at all (:mod:`twinjax.runtime.files`): a refused write ends the run with
one ``RunWriteError`` line and leaves the earlier files as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib
import numpy as np

from twinjax.abm.population import band
from twinjax.runtime.files import atomic_write_text, replacing

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BAND = ("mean", "q05", "q95")  # suffixes of a metric's mean and 90% band across seeds


def save_figure(fig, out_dir: Path, name: str, *, dpi: int = 110) -> str:
    """Lays ``fig`` out, writes it to ``out_dir / name`` and closes it; returns ``name``."""
    fig.tight_layout()
    try:
        with replacing(out_dir / name) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return name


def images(figures: Iterable[str]) -> list[str]:
    """One markdown image line per figure file (alt text: its stem)."""
    return [f"![{Path(f).stem}]({f})" for f in figures]


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Markdown table lines: the header, its rule and one line per row of cells."""
    line = lambda cells: "| " + " | ".join(str(c) for c in cells) + " |"
    return [line(header), "|" + "---|" * len(header), *map(line, rows)]


def scenario_table(summary: dict, columns: dict[str, Callable[[dict], str]]) -> list[str]:
    """A markdown table with a row per scenario of ``summary`` (name: its summary row) and a
    column per ``columns`` entry (header: the cell made from the row)."""
    rows = [[name, *(cell(r) for cell in columns.values())] for name, r in summary.items()]
    return table(["scenario", *columns], rows)


def write_scenario_report(
    out_dir: Path,
    summary: dict,
    *,
    title: str,
    about: str,
    figures: Sequence[str],
    columns: dict[str, Callable[[dict], str]],
    groups: tuple[str, Sequence[str], Callable[[dict, str], str]],
    more: Sequence[str] = (),
) -> None:
    """report.md of scenarios compared: the title, what ran (``about``), the figures, a
    :func:`scenario_table` of ``columns``, a section by subgroup ``groups = (heading, names,
    cell)`` (a column per name, ``cell(row, name)``) and ``more`` lines."""
    heading, names, cell = groups
    by_group = {g: lambda r, g=g: cell(r, g) for g in names}
    write_markdown(out_dir, [
        f"# {title}", "", about, "", *images(figures), "",
        *scenario_table(summary, columns), "", f"## {heading}", "",
        *scenario_table(summary, by_group), *more,
    ])  # fmt: skip


def write_markdown(out_dir: Path, lines: Iterable[str]) -> None:
    """Writes ``out_dir / "report.md"``: the lines, newline-terminated."""
    atomic_write_text(out_dir / "report.md", "\n".join(lines) + "\n")


def write_csv(frame, path: Path, **kwargs) -> Path:
    """``frame.to_csv(path, **kwargs)`` (a DataFrame or Series), written whole or not at all."""
    with replacing(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return path


def banded(key: str, x) -> dict[str, float]:
    """``{key}_mean``, ``{key}_q05``, ``{key}_q95``: mean and 90% band of ``x`` across axis 0
    (seeds)."""
    return {f"{key}_{s}": float(v) for s, v in zip(BAND, band(x), strict=True)}


def band_cell(row: dict, key: str, fmt: str = ".3f") -> str:
    """``mean [q05, q95]`` of the :func:`banded` metric ``key`` of ``row``."""
    m, lo, hi = (format(row[f"{key}_{s}"], fmt) for s in BAND)
    return f"{m} [{lo}, {hi}]"


def band_lines(ax, curves: dict) -> None:
    """One line per scenario: mean across seeds with its 90% band (``curves[name]``: [seeds, T])."""
    for name, x in curves.items():
        m, lo, hi = band(x)
        t = np.arange(len(m))
        ax.plot(t, m, label=name)
        ax.fill_between(t, lo, hi, alpha=0.2)


def group_bars(ax, summary: dict, metric: str, groups) -> None:
    """Grouped bars of ``{metric}_{group}_mean`` per scenario, error bars from the band keys."""
    width = 0.8 / len(summary)
    for i, (name, r) in enumerate(summary.items()):
        m, lo, hi = (np.array([r[f"{metric}_{g}_{s}"] for g in groups]) for s in BAND)
        x = np.arange(len(groups)) + i * width
        ax.bar(x, m, width, yerr=[m - lo, hi - m], label=name, capsize=2)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)


def band_figure(out_dir: Path, name: str, curves: dict, **labels) -> str:
    """A figure of :func:`band_lines` (``labels``: ``ax.set`` keywords) saved as ``name``."""
    fig, ax = plt.subplots(figsize=(7, 4))
    band_lines(ax, curves)
    ax.set(**labels)
    ax.legend()
    return save_figure(fig, out_dir, name)


def bars_figure(out_dir: Path, name: str, summary: dict, metric: str, groups, **labels) -> str:
    """A figure of :func:`group_bars` with a zero line (``labels``: ``ax.set`` keywords)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    group_bars(ax, summary, metric, groups)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(**labels)
    ax.legend()
    return save_figure(fig, out_dir, name)
