"""Pure figure builders (data in, a plotly Figure or an RGB array out), testable without a
browser: the rooms' charts, the explanation charts, and every picture helper."""
