"""Python side of the project: synthetic data (`ml.synth`), profiling (`ml.profile`) and ML."""
