"""✏️ Sketch lab: draw a digit and see what the models will see (the models join later)."""

import streamlit as st

from ui.sketch import preprocess_or_explain, show_preprocessing_stages, sketch_input

st.title("✏️ Sketch lab")
st.caption("Draw a digit, or upload a picture of one: it is turned into a 28×28 image the way "
           "MNIST's digits were.")

drawing = sketch_input("sk")
preprocessed = preprocess_or_explain(drawing)
if preprocessed is not None:
    st.subheader("What the models see")
    show_preprocessing_stages(preprocessed)
