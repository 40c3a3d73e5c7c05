"""Turning operation results into text: tables for people, JSON and CSV for programs.

Renderers return text and never print; the CLI decides where it goes. This is the one place
that shows recovery passwords (through ``records``).
"""
