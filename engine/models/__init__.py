"""Models: `Model` (a family, an architecture, parameters, metadata), model files
(`checkpoint`), the `Family` protocol every model family answers and the `registry` of families
by the kind name stored in model files; each family is a folder of engine/ (`engine/ffnn`,
`engine/cnn`)."""
