"""Step functions written the way learners write them, for the checker's tests."""
