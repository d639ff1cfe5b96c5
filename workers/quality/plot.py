"""Error against coverage, one panel per label, as a PNG (`report --plot`, `calibrate`).

Each panel has the label's two sides: accepting it at scores >= t and rejecting it at scores <= t.
A curve runs over every threshold t of the labelled history: x is the share of the task's
predictions that side decides automatically, y the (weighted) error among them, with the 95 %
Clopper-Pearson upper bound shaded. The current band's edges are squares, the recommended ones
stars, the target error a dashed line.

matplotlib is the optional extra `hitl-workers[plot]`: workers never need it, and only these two
commands draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workers.contracts import Band
from workers.errors import ConfigError
from workers.quality.calibration import Curve
from workers.quality.stats import clopper_pearson_upper

SIDE_STYLE = {True: ("#1f77b4", "accept"), False: ("#d62728", "reject")}


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ConfigError(
            "plots need matplotlib: pip install 'hitl-workers[plot]' (or leave out --plot)"
        ) from error
    return plt


def index_at(found: Curve, threshold: float) -> int | None:
    """The curve's point for a band edge: the most permissive labelled score the edge still selects."""
    thresholds = found.thresholds
    if not thresholds:
        return None
    if found.side.accept:
        # Descending: the last threshold >= the edge.
        candidates = [i for i, t in enumerate(thresholds) if t >= threshold]
    else:
        candidates = [i for i, t in enumerate(thresholds) if t <= threshold]
    return candidates[-1] if candidates else None


def plot_error_coverage(
    path: Path,
    curves: Mapping[str, tuple[Curve, Curve]],
    current: Mapping[str, Band],
    proposed: Mapping[str, Band] | None = None,
    target: float | None = None,
    title: str = "",
) -> Path:
    plt = _pyplot()
    from matplotlib.ticker import PercentFormatter

    labels = sorted(curves)
    figure, axes = plt.subplots(1, len(labels), figsize=(6.6 * len(labels), 6.4), squeeze=False, sharey=True)
    marked: list[float] = []
    for axis, label in zip(axes[0], labels, strict=True):
        for found in curves[label]:
            if not found.thresholds:
                continue
            colour, verb = SIDE_STYLE[found.side.accept]
            sign = ">=" if found.side.accept else "<="
            style = "-" if found.side.accept else "--"
            bounds = [
                clopper_pearson_upper(e, n, 0.05) for e, n in zip(found.errors, found.sizes, strict=True)
            ]
            axis.plot(
                found.coverages,
                found.risks,
                color=colour,
                lw=2,
                ls=style,
                label=f"{verb} {label} when score {sign} t",
            )
            axis.fill_between(found.coverages, found.risks, bounds, color=colour, alpha=0.12, lw=0)
            edges = [("current", current.get(label), "s", 9)]
            if proposed is not None:
                edges.append(("recommended", proposed.get(label), "*", 17))
            for name, band, marker, size in edges:
                if band is None:
                    continue
                edge = band.high if found.side.accept else band.low
                edge_name = "high" if found.side.accept else "low"
                index = index_at(found, edge)
                if index is None:
                    axis.plot(
                        [],
                        [],
                        marker=marker,
                        ms=size * 0.7,
                        color=colour,
                        mec="black",
                        ls="none",
                        label=f"{name} {edge_name} = {edge:g}: decides nothing",
                    )
                    continue
                x, y = found.coverages[index], found.risks[index]
                marked.append(y)
                axis.plot(
                    [x],
                    [y],
                    marker=marker,
                    ms=size,
                    color=colour,
                    mec="black",
                    ls="none",
                    label=f"{name} {edge_name} = {edge:g}: error {y:.1%}, decides {x:.0%}",
                )
        if target is not None:
            axis.axhline(target, color="black", ls=":", lw=1.5, label=f"target error {target:.1%}")
        axis.set_title(f"label {label}", fontsize=12)
        axis.set_xlabel("coverage: share of all predictions this side decides automatically")
        axis.set_xlim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=9, ncol=1, frameon=False)
    axes[0][0].set_ylabel("error among them (line: estimate; shaded: 95% upper bound)")
    top = max([0.05, 2.5 * (target or 0)] + [1.4 * y for y in marked])
    axes[0][0].set_ylim(0, min(1.0, top))
    axes[0][0].yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=1))
    figure.suptitle(title, fontsize=13)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
