"""Thin typer commands. Modules here import only typer, rich and the standard library at
import time, so that `medxlate --help` never loads torch; library code is imported inside
each command function."""
