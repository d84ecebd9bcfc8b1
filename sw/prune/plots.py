"""Plots saved as PNG (matplotlib, Agg backend: no display needed)."""


def line_plot(path, series: dict, xlabel: str, ylabel: str, title: str, errors: dict | None = None,
              marker: str | None = "o") -> None:
    """One line per ``series[label] = (xs, ys)`` (optional ``errors[label]`` = y error bars; ``marker``
    None for long curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        if errors and label in errors:
            ax.errorbar(xs, ys, yerr=errors[label], marker=marker, capsize=3, label=label)
        else:
            ax.plot(xs, ys, marker=marker, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def panel_plot(path, panels: dict, xlabel: str, ylabel: str, title: str, errors: dict | None = None,
               marker: str | None = "o") -> None:
    """One panel per ``panels[panel_title] = {label: (xs, ys)}``, side by side with a shared legend
    (optional ``errors[panel_title][label]`` = y error bars); ``ylabel`` on the first panel only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for label, (xs, ys) in series.items():
            err = (errors or {}).get(name, {}).get(label)
            if err is not None:
                ax.errorbar(xs, ys, yerr=err, marker=marker, capsize=3, label=label)
            else:
                ax.plot(xs, ys, marker=marker, label=label)
        ax.set_xlabel(xlabel)
        if ax is axes[0][0]:
            ax.set_ylabel(ylabel)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
