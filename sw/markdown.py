"""Markdown tables: the one helper every report and BENCHMARKS.md section writes them with."""


def table(header, rows, align: str = "") -> list[str]:
    """A Markdown table as lines: header, rule, one line per row; cells go through ``str``.

    ``align`` has one letter per column: ``"r"`` right-aligns it (``---:``), ``"l"`` keeps the
    default rule (``---``); empty means ``"l"`` throughout. A row of another width is a ValueError.
    """
    header = list(header)
    align = align or "l" * len(header)
    if len(align) != len(header) or set(align) - set("lr"):
        raise ValueError(f"align needs one 'l' or 'r' per column ({len(header)}), got {align!r}")
    lines = [_line(header), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"row {row} has {len(row)} cells, the header {len(header)}")
        lines.append(_line(row))
    return lines


def _line(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
