"""The Open Job Spec HTTP binding in front of corral (docs/OJS.md)."""
