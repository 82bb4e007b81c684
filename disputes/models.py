"""Disputes: filed on completed tasks and settled by reviewers (a later issue builds them)."""
