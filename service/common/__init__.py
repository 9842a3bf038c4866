"""Helpers every layer may use: domain errors, time, the bounded work runner. Imports nothing of the service."""
