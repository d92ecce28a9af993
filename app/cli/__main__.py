"""`python -m app.cli`: the console script."""

from app.cli import main

main()
