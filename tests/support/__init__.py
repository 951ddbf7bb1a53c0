"""Helpers shared by the test modules (no tests here): gradient checks, Keras builders,
generated-code loaders."""
