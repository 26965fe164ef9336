"""Streamlit-side helpers: session state, cached loaders, widgets, figure builders."""
