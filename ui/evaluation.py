"""The rooms' Evaluation tab: test accuracy, confusion matrix, the misclassified digits."""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine.data import as_float
from engine.train import confusion_matrix
from ui import charts

GALLERY_SIZE = 40


def show_evaluation(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, *,
                    key: str) -> None:
    """Draw a model's evaluation on held-out digits.

    images: uint8 (n, 28, 28), labels and predicted: int (n,). key: prefix of the chart keys.
    """
    wrong = np.flatnonzero(predicted != labels)
    st.metric(f"Test accuracy ({len(labels):,} digits never trained on)",
              f"{np.mean(predicted == labels):.1%}")
    left, right = st.columns([2, 3])
    left.plotly_chart(charts.confusion_matrix_figure(confusion_matrix(labels, predicted)),
                      key=f"{key}_confusion_chart", width="stretch")
    shown = wrong[:GALLERY_SIZE]
    right.plotly_chart(charts.digit_gallery_figure(
        as_float(images[shown]), [f"{predicted[i]} (true {labels[i]})" for i in shown],
        columns=8, title=f"Misclassified test digits: predicted (true), first {len(shown)} of "
                         f"{len(wrong)}"), key=f"{key}_gallery_chart", width="stretch")
