"""The self-contained HTML page: inline CSS, tables, figures as data: URIs, no external requests."""

from __future__ import annotations

from html import escape

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
td { white-space: nowrap; }
th { background: #f0f0f5; }
td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 12px; }
.note { color: #555; font-size: 14px; }
"""

FIGURE_TITLES = {
    "accuracy_vs_budget": "Accuracy against samples, tokens, FLOPs and seconds",
    "peak_memory": "Peak memory",
    "phase_split": "Where the time goes",
    "value_mse": "Value-estimation error",
}


def table(header: list[str], body: list[list[str]], css_class: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def page(title: str, intro: list[str], tables: list[tuple[str, str, list[str], list[list[str]]]],
         figures: dict[str, str | None], notes: list[str], repro: list[tuple[str, str]]) -> str:
    """tables: [(heading, css class, header, body)]; figures: name -> base64 PNG or None."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    parts += [f"<p class='note'>{escape(line)}</p>" for line in intro]
    for heading, css_class, header, body in tables:
        parts += [f"<h2>{escape(heading)}</h2>", table(header, body, css_class)]
    parts.append("<h2>Figures</h2>")
    for name, png in figures.items():
        parts.append(f"<h3>{escape(FIGURE_TITLES.get(name, name))}</h3>")
        if png is None:
            parts.append("<p class='note'>Not logged in these runs (PPO and BASIS log train/value_mse; "
                         "--diag-every N turns the value diagnostic on).</p>")
        else:
            parts.append(f"<img class='figure' id='fig-{escape(name)}' alt='{escape(FIGURE_TITLES.get(name, name))}' "
                         f"src='data:image/png;base64,{png}'>")
    parts.append("<h2>How the numbers are computed</h2><ul>")
    parts += [f"<li class='note'>{escape(n)}</li>" for n in notes]
    parts.append("</ul><h2>Reproducibility</h2>")
    for heading, text in repro:
        parts.append(f"<h3>{escape(heading)}</h3><pre>{escape(text)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
