"""The rooms' Evaluation tab: test accuracy, confusion matrix, the misclassified digits."""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine.data.datasets import class_names_of
from engine.data.mnist import Dataset, as_float
from engine.models.model import Model
from engine.training.loop import confusion_matrix
from ui.figures import charts

GALLERY_SIZE = 40


def evaluated_labels(model: Model, images: np.ndarray, key: str) -> np.ndarray:
    """The model's labels (n,) for the test images (n, 28, 28), computed once per model and
    image set and kept in the session under `key`: a rerun that did not change the model
    (any widget, the live panel) predicts nothing."""
    kept = st.session_state.get(key)
    if kept is None or kept[0] is not model or kept[1] is not images:
        kept = (model, images, model.predict_proba(as_float(images)).argmax(axis=1))
        st.session_state[key] = kept
    return kept[2]


def reads_classes_of(model: Model, dataset: Dataset) -> bool:
    """Whether `model` was trained on classes the data set's test images are labelled with; if
    not, the tab says so (grading a digit model on clothing would only print noise)."""
    trained_on = model.metadata.get("dataset", "")
    if class_names_of(trained_on) == dataset.class_names:
        return True
    st.info(f"The model shown was trained on {trained_on or 'other images'}; its classes are "
            f"not those of {dataset.name}, so it cannot be graded on them. Press **Start** to "
            f"train one on {dataset.name}.", icon=":material/info:")
    return False


def show_evaluation(model: Model, images: np.ndarray, labels: np.ndarray, *, key: str) -> None:
    """Draw a model's evaluation on held-out digits.

    images: uint8 (n, 28, 28), labels: int (n,). key: prefix of the chart keys (and of the
    session's kept predictions).
    """
    predicted = evaluated_labels(model, images, f"{key}_eval")
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
