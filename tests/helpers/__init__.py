"""Helpers shared by the test modules: builders, fixtures and checks, one plain module per theme
(imported as ``from helpers.<module> import …``). A test module never imports another test
module; what two of them share lives here or in conftest.py."""
