"""Digits: the embedded MNIST subset and full MNIST (`mnist`), the data sets a room can train on
and their checked download (`datasets`), the offline stand-in (`standin`), and a drawing turned
into the 28x28 image a model expects (`preprocess`)."""
