"""The driving edge and the composition root: settings, web routes, the terminal demo, the CLI.

Rule: only this package knows concrete adapters and storage classes (see ``bot.app.build``).
"""
