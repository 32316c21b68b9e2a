"""Persistence: SQLModel tables and the async repositories that implement the core's ports.

Rule: storage imports conversations (its ports and types) and never bot or adapters. The core
never sees a row: repositories map rows to the core's frozen dataclasses and back.
"""
