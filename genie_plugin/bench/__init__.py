"""Episodic benchmark runner, results rows and leaderboards."""
