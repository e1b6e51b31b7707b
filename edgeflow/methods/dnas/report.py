"""The architecture a search found, as a figure (matplotlib, Agg; the caller saves it)."""

from __future__ import annotations

from typing import Any


def architecture_figure(rows: list[dict[str, Any]], title: str) -> Any:
    """Bars per layer of ``rows`` (``architecture()`` rows): channels before (light) and after (dark),
    each bar labelled with what else the search chose (kernel/dilation, bits)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [r["layer"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(rows) + 2), 3.6))
    x = range(len(rows))
    ax.bar(x, [r.get("channels_before", 0) for r in rows], color="#c6dbef", label="before")
    ax.bar(x, [r.get("channels", 0) for r in rows], color="#2171b5", label="found")
    for i, r in enumerate(rows):
        notes = []
        if "kernel" in r:
            notes.append(f"k{r['kernel']} d{r['dilation']}")
        if "choice" in r:
            notes.append(str(r["choice"]))
        if "weight_bits" in r:
            notes.append(f"w{r['weight_bits']}a{r['act_bits']}")
        if notes:
            ax.annotate("\n".join(notes), (i, r.get("channels", 0)), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(x), names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("output channels")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
