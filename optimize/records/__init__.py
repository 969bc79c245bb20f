"""Records every stage may read and write: output fidelity and the task metrics. They import
nothing else from the package, so no stage depends on another through them."""
