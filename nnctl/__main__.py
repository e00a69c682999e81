"""`python -m nnctl` runs the command-line tool."""

from nnctl.cli import main

if __name__ == "__main__":
    main()
