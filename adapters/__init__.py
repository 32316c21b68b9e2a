"""Driven adapters: one module per vendor and role, thin, clients injected.

Rule: adapters import conversations (its ports, types and errors), never bot or storage.
Vendor errors are translated into conversations.errors at this border.
"""
