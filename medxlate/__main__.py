"""`python -m medxlate ...` runs the medxlate command line, like the `medxlate` script."""

from medxlate.cli.main import app

if __name__ == "__main__":
    app(prog_name="medxlate")
