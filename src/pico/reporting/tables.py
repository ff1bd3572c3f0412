"""The benchmark tables (Tables 1-3, ``results/{benchmark}.json``) as HTML pages for Snakemake's
report, which shows HTML in place but offers CSV/TSV only as downloads (Snakemake 9.27)."""

from __future__ import annotations

import html
import numbers


def columns(rows: list[dict]) -> list[str]:
    """Every key of the rows, in the order they first appear."""
    return list(dict.fromkeys(k for row in rows for k in row))


def cell(value) -> str:
    """A value as table text: floats to 4 significant digits, none as a dash."""
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _td(value) -> str:
    """A table cell; numbers right-aligned."""
    numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
    return ('<td class="num">' if numeric else "<td>") + html.escape(cell(value)) + "</td>"


def to_html(table: dict) -> str:
    """``{"benchmark", "demo", "rows"}`` as a standalone HTML page: the title, then one row per
    model and one column per key the rows have (so new benchmarks need no code here)."""
    keys = columns(table["rows"])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "\n".join("<tr>" + "".join(_td(r.get(k)) for k in keys) + "</tr>" for r in table["rows"])
    title = html.escape(table["benchmark"])
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border-bottom:1px solid #ccc;padding:.3em .8em;text-align:left}td.num{text-align:right}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>\n'
        f"<body><h3>{title}</h3>\n<table>\n<tr>{head}</tr>\n{body}\n</table></body></html>\n"
    )
