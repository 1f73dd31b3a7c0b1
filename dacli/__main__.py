"""``python -m dacli`` — the same entry point as the ``dacli`` console script."""

from dacli.cli.app import main

if __name__ == "__main__":
    main()
