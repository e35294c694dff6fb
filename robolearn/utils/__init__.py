"""Small helpers shared by several CLIs."""
