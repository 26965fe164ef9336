"""🕸️ Feed-forward net (placeholder until its issue lands)."""

import streamlit as st

st.title("🕸️ Feed-forward net")
st.info("This room is being built.")
