"""Plumbing every License Portal service shares: settings, database sessions, RPC, events, errors.

Business rules never live here: a rule belongs to the one service that owns it.
"""
