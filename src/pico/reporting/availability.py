"""A yt8m dataset's availability page (``results/{dataset}/availability.html``): how many of
its drawn videos came out ok and are used, and why the others did not (``pico.data.yt8m.select``)."""

from __future__ import annotations

from html import escape


def to_html(report: dict) -> str:
    """The availability report (``pico.data.yt8m.select``) as an HTML page for ``snakemake --report``."""
    rows = "".join(
        f"<tr><td>{escape(s)}</td><td>{v['count']}</td><td>{'<br>'.join(map(escape, v['examples']))}</td></tr>"
        for s, v in report["statuses"].items()
    )
    head = (
        f"<p>{report['drawn']} drawn (sample {report['sample']} and its reserve), {report['ok']} ok, "
        f"{report['used']} used for training"
        + (f", {report['short_by']} short of the sample" if report["short_by"] else "")
        + ".</p>"
    )
    return (
        f"<html><body><h3>Availability: {escape(report.get('dataset', ''))}</h3>{head}"
        f"<table border=1><tr><th>status</th><th>videos</th><th>example reasons</th></tr>{rows}</table></body></html>\n"
    )
