"""Glassbox computation: numpy + JAX only. Never imports streamlit or plotly."""
