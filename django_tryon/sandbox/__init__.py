"""An AILabAPI-compatible provider on loopback, for the demo, tests and benchmarks."""
