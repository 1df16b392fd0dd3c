"""The built-in example: a seeded synthetic region (a test-fixture maker too) and the demo that
runs the main job on it. Uses the workflow in core; nothing in core uses it."""
